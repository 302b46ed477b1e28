#!/usr/bin/env bash
# Debian bookworm's own Node 18 build (what a Raspberry Pi runs) for amd64, arm64 and armhf, beside the
# host's Node. Needs root on Debian 12 (apt-get, mount namespaces).
#   tools/ci/node18.sh prepare                 download + extract nodejs 18 and its libraries (cached),
#                                              install qemu-user-static if missing
#   tools/ci/node18.sh run ARCH [node args]    run that node in the current directory
#   tools/ci/node18.sh check                   version, arch, HMAC, zlib and loopback HTTP/fetch on all three
# Cache: ${HOLDFAST_CACHE:-$HOME/.cache/holdfast}/node18/<arch>/{debs,root}. Each arch is fetched with a
# private apt state (own lists, empty dpkg status, removed when done), so the host's apt and dpkg are never
# changed for it.
# amd64 runs in a private mount namespace with the extracted /usr/share laid over the real one (Debian's
# libnode loads acorn, cjs-module-lexer and undici from /usr/share/nodejs); arm64/armhf run under
# qemu-user with -L ROOT, which already redirects those paths, so they need no mount.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
CACHE=${HOLDFAST_CACHE:-${HOME:-/root}/.cache/holdfast}/node18
ARCHES=(amd64 arm64 armhf)
say() { printf '[node18] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# The 18.x version apt would install: the candidate, or else the newest 18.x in the version table.
pick_version() {
  local policy cand
  policy=$(apt-cache policy nodejs) || return 1
  cand=$(awk '/Candidate:/ {print $2}' <<<"$policy")
  [[ $cand == 18.* ]] || cand=$(awk '$1 ~ /^18\./ {print $1; exit} $2 ~ /^18\./ {print $2; exit}' <<<"$policy")
  [[ -n $cand ]] && echo "$cand"
}

prepare_arch() {
  local arch=$1 d=$CACHE/$1 v
  if [[ -f $d/root/.ready ]]; then say "$arch: cached, nodejs $(cat "$d/version")"; return; fi
  mkdir -p "$d/apt/lists/partial" "$d/debs/partial"
  touch "$d/apt/status"
  cat >"$d/apt/apt.conf" <<EOF
APT::Architecture "$arch"; APT::Architectures { "$arch"; };
Dir::State "$d/apt"; Dir::State::Lists "$d/apt/lists"; Dir::State::status "$d/apt/status";
Dir::Cache "$d/apt"; Dir::Cache::archives "$d/debs";
APT::Install-Recommends "false"; APT::Sandbox::User "root"; Acquire::Languages "none";
EOF
  export APT_CONFIG=$d/apt/apt.conf
  update() {  # retried once (a mirror mid-sync fails it now and then), then goes on with what arrived
    say "$arch: apt-get update (private lists)"
    apt-get -qq update >&2 || { sleep 5; say "$arch: apt-get update, again"; apt-get -qq update >&2; } ||
      say "warning: $arch: some package lists failed to download; going on with the ones that arrived"
    touch "$d/apt/updated"
  }
  [[ -f $d/apt/updated ]] || update
  v=$(pick_version) || { update; v=$(pick_version); } || die "$arch: no nodejs 18.x in Debian's lists"
  # A different version than the debs already cached: start the debs over.
  [[ -f $d/version && $(cat "$d/version") == "$v" ]] || rm -f "$d"/debs/*.deb
  say "$arch: downloading nodejs $v and its dependencies"
  local get=(apt-get -q -y -o Dpkg::Use-Pty=0 install --download-only "nodejs=$v")
  "${get[@]}" >"$d/download.log" 2>&1 || { update; "${get[@]}" >"$d/download.log" 2>&1; } ||
    { cat "$d/download.log" >&2; die "$arch: download failed"; }
  echo "$v" >"$d/version"
  say "$arch: extracting $(ls "$d"/debs/*.deb | wc -l) packages"
  rm -rf "$d/root" "$d/root.tmp"
  for deb in "$d"/debs/*.deb; do dpkg -x "$deb" "$d/root.tmp"; done
  rm -rf "$d"/root.tmp/usr/share/{doc,man,locale,lintian}
  touch "$d/root.tmp/.ready"
  mv "$d/root.tmp" "$d/root"
  rm -rf "$d/apt"  # the lists (~19 MB) are not needed once the root is there
  unset APT_CONFIG
}

prepare() {
  if command -v qemu-aarch64-static >/dev/null && command -v qemu-arm-static >/dev/null; then
    say "qemu-user-static: present"
  else
    say "qemu-user-static: installing"
    local inst=(apt-get -q -y -o Dpkg::Use-Pty=0 install --no-install-recommends qemu-user-static)
    "${inst[@]}" >&2 || { say "apt-get update"; apt-get -qq update >&2; "${inst[@]}" >&2; }
  fi
  for a in "${ARCHES[@]}"; do (prepare_arch "$a"); done
  say "ready: $(du -sh "$CACHE" | cut -f1) in $CACHE; run with: $0 run <amd64|arm64|armhf> [node args]"
  for a in "${ARCHES[@]}"; do say "  $0 run $a -e 'console.log(process.version, process.arch)'"; done
}

run() {
  local arch=${1:-} r
  r=$CACHE/$arch/root
  [[ " ${ARCHES[*]} " == *" $arch "* ]] || die "usage: $0 run <amd64|arm64|armhf> [node args...]"
  [[ -f $r/.ready ]] || die "$arch is not prepared: run '$0 prepare' first"
  shift
  case $arch in
    # unshare execs in place (no fork), so the mount namespace ends with node, and signals/exit pass through.
    amd64) exec unshare -m --propagation private sh -c 'r=$1; shift
      mount -t overlay overlay -o "lowerdir=$r/usr/share:/usr/share" /usr/share &&
      LD_LIBRARY_PATH=$r/usr/lib/x86_64-linux-gnu exec "$r/usr/bin/node" "$@"' sh "$r" "$@" ;;
    arm64) exec qemu-aarch64-static -L "$r" "$r/usr/bin/node" "$@" ;;
    armhf) exec qemu-arm-static -L "$r" \
      -E "LD_LIBRARY_PATH=$r/lib/arm-linux-gnueabihf:$r/usr/lib/arm-linux-gnueabihf" "$r/usr/bin/node" "$@" ;;
  esac
}

# Prints "version<TAB>arch<TAB>hmac<TAB>zlib<TAB>http" after a fetch to its own server on 127.0.0.1.
CHECK_JS='
const http = require("node:http"), crypto = require("node:crypto"), net = require("node:net"), zlib = require("node:zlib");
setTimeout(() => { console.error("timed out"); process.exit(3); }, 60000).unref();
const hmac = crypto.createHmac("sha256", "holdfast").update("node18").digest("hex").slice(0, 16);
const gz = zlib.gunzipSync(zlib.gzipSync("ok")).toString();
const srv = http.createServer((q, r) => r.end("pong")).listen(0, "127.0.0.1", async () => {
  try {
    const res = await fetch(`http://${srv.address().address}:${srv.address().port}/`);
    const body = await res.text();
    console.log([process.version, process.arch, hmac, gz, `${net.isIP("127.0.0.1") && res.status} ${body}`].join("\t"));
    process.exit(0);
  } catch (e) { console.error(e); process.exit(1); }
});'
HMAC=3f1cd6a86e13b479  # HMAC-SHA256("holdfast", "node18"), first 16 hex digits

check() {
  local fail=0 a out t0 t1 ver parch hmac gz http log
  declare -A want=([amd64]=x64 [arm64]=arm64 [armhf]=arm)
  log=$(mktemp)
  printf '%-6s %-9s %-6s %-5s %-5s %-10s %s\n' arch version node hmac zlib http time
  for a in "${ARCHES[@]}"; do
    t0=$(date +%s%N)
    out=$(timeout 120 "$BASH" "$0" run "$a" -e "$CHECK_JS" 2>"$log") || true
    t1=$(date +%s%N)
    IFS=$'\t' read -r ver parch hmac gz http <<<"$out" || true
    if [[ $ver == v18.* && $parch == "${want[$a]}" && $hmac == "$HMAC" && $gz == ok && $http == "200 pong" ]]; then
      printf '%-6s %-9s %-6s %-5s %-5s %-10s %s\n' "$a" "$ver" "$parch" ok ok "$http" \
        "$(( (t1 - t0) / 1000000 )) ms"
    else
      fail=1
      printf '%-6s FAILED: %s\n' "$a" "${out:-no output}"
      sed 's/^/       /' "$log" | tail -n 20
    fi
  done
  rm -f "$log"
  return $fail
}

case ${1:-} in
  prepare) prepare ;;
  run) shift; run "$@" ;;
  check) check ;;
  *) die "usage: $0 prepare | run <amd64|arm64|armhf> [node args...] | check" ;;
esac
