// Validates Kubernetes objects against the API's schemas (npm kubernetes-models, and
// @kubernetes-models/prometheus-operator for monitoring.coreos.com), offline.
// Usage: node validate.js OBJECTS.json, a JSON array of objects. Prints one line per invalid
// object, naming its kind, name and the schema's complaint, and exits 1 if there is any; an
// object of a kind neither package models is invalid too.
"use strict";
const fs = require("fs");

function modelFor(apiVersion, kind) {
  const pkg = apiVersion.startsWith("monitoring.coreos.com/")
    ? "@kubernetes-models/prometheus-operator"
    : "kubernetes-models";
  const module = require(`${pkg}/${apiVersion}/${kind}`);
  return module[kind];
}

let failures = 0;
for (const object of JSON.parse(fs.readFileSync(process.argv[2], "utf8"))) {
  const what = `${object.kind} ${object.metadata && object.metadata.name}`;
  try {
    new (modelFor(object.apiVersion, object.kind))(object).validate();
  } catch (e) {
    console.log(`${what}: ${e.message}`);
    failures++;
  }
}
process.exit(failures === 0 ? 0 : 1);
