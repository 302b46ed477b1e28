/** Reading a Prometheus text scrape back in tests. */
import * as assert from 'uvu/assert';

/** The samples of a scrape: "name{labels}" -> value. Checks every line is a comment or a sample. */
export function parseScrape(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    const s = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    assert.ok(s !== null, `not a sample line: ${JSON.stringify(line)}`);
    m.set(s[1], Number(s[2]));
  }
  return m;
}
