#!/usr/bin/env node
// Validates SARIF files against the official SARIF 2.1.0 JSON schema
// (sarif-2.1.0-rtm.5, as shipped by @microsoft/jest-sarif; a draft-04 schema,
// hence ajv's draft-04 class) with the standard string formats (uri,
// uri-reference, date-time...) checked by ajv-formats.
// usage: node validate-sarif.js FILE...   exit 0 valid, 1 invalid, 2 usage
'use strict';
const fs = require('fs');
const path = require('path');
const Ajv = require('ajv-draft-04');
const addFormats = require('ajv-formats');

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: validate-sarif.js FILE...');
  process.exit(2);
}
const schemaPath = path.join(path.dirname(require.resolve('@microsoft/jest-sarif/package.json')),
                             'lib', 'schemas', 'sarif-2.1.0-rtm.5.json');
const schema = JSON.parse(fs.readFileSync(schemaPath, 'utf8'));
// unicodeRegExp: false because the schema's `language` pattern has a stray
// `]` that only non-unicode regular expressions accept (as a literal).
const ajv = new Ajv({allErrors: true, strict: false, unicodeRegExp: false});
addFormats(ajv);
const validate = ajv.compile(schema);
let bad = 0;
for (const f of files) {
  let doc;
  try {
    doc = JSON.parse(fs.readFileSync(f, 'utf8'));
  } catch (e) {
    console.error(`${f}: not JSON: ${e.message}`);
    bad++;
    continue;
  }
  if (doc.version !== '2.1.0') {
    console.error(`${f}: version is ${JSON.stringify(doc.version)}, not "2.1.0"`);
    bad++;
  }
  if (!validate(doc)) {
    console.error(`${f}: invalid SARIF 2.1.0:\n${ajv.errorsText(validate.errors, {separator: '\n'})}`);
    bad++;
  } else {
    console.log(`${f}: valid SARIF 2.1.0 (${path.basename(schemaPath)})`);
  }
}
process.exit(bad === 0 ? 0 : 1);
