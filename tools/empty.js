// Stands in for cbor-x's optional native addon (cbor-extract) in bundles. cbor-x loads it with
// `if (extractor) setExtractor(...)`: exporting null makes it fall back to its JavaScript decoder.
module.exports = null;
