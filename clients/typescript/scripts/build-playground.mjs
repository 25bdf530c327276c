// Builds the playground into one self-contained HTML page (the SDK and the page's script bundled and
// inlined) at server/playground/index.html, which the server embeds. `--check` builds in memory and
// fails if the committed page differs, so it cannot go stale.
import { build } from "esbuild";
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const OUT = here("../../../server/playground/index.html");

export async function buildPage() {
  const result = await build({
    entryPoints: [here("../playground/main.ts")],
    bundle: true,
    minify: true,
    format: "iife",
    target: ["es2022"],
    platform: "browser",
    legalComments: "none",
    write: false,
    logLevel: "silent",
  });
  const script = result.outputFiles[0].text.trim();
  if (/<\/script/i.test(script)) throw new Error("the bundle contains </script and cannot be inlined");
  const template = readFileSync(here("../playground/index.html"), "utf8");
  if (!template.includes("<script>/*BUNDLE*/</script>")) throw new Error("the template has no bundle placeholder");
  const banner = "<!-- Built by clients/typescript (npm run build:playground) from playground/ and src/; do not edit. -->\n";
  return template.replace("<!doctype html>\n", `<!doctype html>\n${banner}`).replace("<script>/*BUNDLE*/</script>", () => `<script>${script}</script>`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const page = await buildPage();
  if (process.argv.includes("--check")) {
    if (readFileSync(OUT, "utf8") !== page) {
      console.error(`${OUT} is stale: run \`npm run build:playground\` in clients/typescript and commit it`);
      process.exit(1);
    }
  } else {
    writeFileSync(OUT, page);
    console.log(`wrote ${OUT} (${page.length} bytes)`);
  }
}
