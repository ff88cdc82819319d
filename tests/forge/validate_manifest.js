// Runs Atlassian's own manifest validation (@forge/manifest, as `forge lint` does) on each file given.
const { ProcessorBuilder, ValidationTypes } = require('@forge/manifest');

const TYPES = [ValidationTypes.FULL, ValidationTypes.PRODUCT_TRIGGER, ValidationTypes.FORGE_REMOTE_COMPUTE];

(async () => {
  const results = {};
  for (const file of process.argv.slice(2)) {
    results[file] = {};
    for (const type of TYPES) {
      const result = await ProcessorBuilder.instance().withValidation(type).build().process(file);
      results[file][type] = { success: result.success, errors: result.errors || [] };
    }
  }
  console.log(JSON.stringify(results));
})().catch((error) => { console.error(error); process.exit(2); });
