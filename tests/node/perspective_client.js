// Calls this service's Perspective-compatible API through Node's googleapis-common, as googleapis does:
// the endpoint is generated from our discovery document, the key sent as ?key=. Prints one JSON line.
// Usage: node perspective_client.js <base URL> <API key> <comment text>
"use strict";
const { Discovery } = require("googleapis-common");

async function main() {
  const [base, key, text] = process.argv.slice(2);
  const discovery = new Discovery({ debug: false, includePrivate: false });
  const makeEndpoint = await discovery.discoverAPI(`${base}/$discovery/rest?version=v1alpha1`);
  const api = makeEndpoint({ auth: key });
  const analyzed = await api.comments.analyze({
    requestBody: { comment: { text }, requestedAttributes: { TOXICITY: {} }, spanAnnotations: true },
  });
  const spans = analyzed.data.attributeScores.TOXICITY.spanScores;
  const suggested = await api.comments.suggestscore({
    requestBody: { comment: { text }, attributeScores: { TOXICITY: { summaryScore: { value: 0.1 } } }, clientToken: "node-1" },
  });
  console.log(
    JSON.stringify({
      // JavaScript string indices are UTF-16 code units: these slices are what a Node client shows.
      spans: spans.map((s) => text.slice(s.begin, s.end)),
      values: spans.map((s) => s.score.value),
      summary: analyzed.data.attributeScores.TOXICITY.summaryScore.value,
      detectedLanguages: analyzed.data.detectedLanguages,
      clientToken: suggested.data.clientToken,
    }),
  );
}

main().catch((error) => {
  console.error(error && error.message ? error.message : String(error));
  process.exit(1);
});
