// Usage: node validate.mjs openapi.json — exit 0 and "valid: ..." when the document is a valid OpenAPI document,
// else exit 1 with the validator's errors.
import { readFile } from 'node:fs/promises';
import { validate } from '@readme/openapi-parser';

const file = process.argv[2];
if (!file) {
  console.error('usage: node validate.mjs openapi.json');
  process.exit(2);
}

const doc = JSON.parse(await readFile(file, 'utf8'));
const result = await validate(doc);
if (result.valid) {
  console.log(`valid: OpenAPI ${doc.openapi}, ${Object.keys(doc.paths ?? {}).length} paths`);
  if (result.warnings?.length) console.log(`warnings: ${JSON.stringify(result.warnings)}`);
  process.exit(0);
}
console.error(`invalid: ${JSON.stringify(result.errors, null, 2)}`);
process.exit(1);
