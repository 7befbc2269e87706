// validate.js FILE.json: validates every Kubernetes object in FILE (a JSON array) against
// the Kubernetes and Gateway API schemas of the npm packages kubernetes-models and
// @kubernetes-models/gateway-api (found through NODE_PATH). Prints one line per object;
// exit 1 when any object fails or has an apiVersion/kind without a schema.
// Unknown fields are reported too (strict_fields.js, from the packages' type declarations).
'use strict';
const fs = require('fs');
const path = require('path');
const { Declarations, unknownFields } = require('./strict_fields.js');

function modelFor(apiVersion, kind) {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  const mod = group === 'gateway.networking.k8s.io'
    ? `@kubernetes-models/gateway-api/${group}/${version}`
    : `kubernetes-models/${group ? group + '/' : ''}${version}`;
  let exported, file;
  try {
    exported = require(mod);
    file = path.join(path.dirname(require.resolve(mod)), `${kind}.d.ts`);
  } catch (e) {
    return null;
  }
  return exported[kind] ? { Model: exported[kind], file } : null;
}

const nodeModules = (process.env.NODE_PATH || '').split(':')[0];
const decls = new Declarations(nodeModules);

const objects = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
let failed = 0;
for (const obj of objects) {
  const id = `${obj.apiVersion}/${obj.kind} ${obj.metadata && obj.metadata.name}`;
  const found = modelFor(String(obj.apiVersion), String(obj.kind));
  if (!found) {
    console.log(`FAIL ${id}: no schema for this apiVersion/kind`);
    failed++;
    continue;
  }
  const decl = decls.load(found.file);
  if (!decl) {
    console.log(`FAIL ${id}: no type declarations at ${found.file}`);
    failed++;
    continue;
  }
  const unknown = [];
  unknownFields(decls, obj, decl.ty, found.file, '', unknown);
  if (unknown.length) {
    console.log(`FAIL ${id}: unknown fields ${unknown.join(', ')}`);
    failed++;
    continue;
  }
  try {
    new found.Model(obj).validate();
    console.log(`ok   ${id}`);
  } catch (e) {
    console.log(`FAIL ${id}: ${e.message}`);
    failed++;
  }
}
process.exit(failed ? 1 : 0);
