// validate.js FILE.json: validates every Kubernetes object in FILE (a JSON array) against
// the Kubernetes and Gateway API schemas of the npm packages kubernetes-models and
// @kubernetes-models/gateway-api (found through NODE_PATH). Prints one line per object;
// exit 1 when any object fails or has an apiVersion/kind without a schema.
'use strict';
const fs = require('fs');

function modelFor(apiVersion, kind) {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  const mod = group === 'gateway.networking.k8s.io'
    ? `@kubernetes-models/gateway-api/${group}/${version}`
    : `kubernetes-models/${group ? group + '/' : ''}${version}`;
  let exported;
  try {
    exported = require(mod);
  } catch (e) {
    return null;
  }
  return exported[kind] || null;
}

const objects = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
let failed = 0;
for (const obj of objects) {
  const id = `${obj.apiVersion}/${obj.kind} ${obj.metadata && obj.metadata.name}`;
  const Model = modelFor(String(obj.apiVersion), String(obj.kind));
  if (!Model) {
    console.log(`FAIL ${id}: no schema for this apiVersion/kind`);
    failed++;
    continue;
  }
  try {
    new Model(obj).validate();
    console.log(`ok   ${id}`);
  } catch (e) {
    console.log(`FAIL ${id}: ${e.message}`);
    failed++;
  }
}
process.exit(failed ? 1 : 0);
