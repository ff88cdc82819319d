// The peer Inflow's panel is benchmarked against: atlassian-connect-express's hello-world
// panel, JWT-authenticated by addon.authenticate(), tenant read from its sequelize store on sqlite3.
// Started by bench/ace.py with PORT, ACE_STORE (sqlite file) and ACE_TENANT (JSON of one installed
// tenant, written into the store directly before listening, as the /installed hook would).
"use strict";

const express = require("express");
const ace = require("atlassian-connect-express");

const app = express();
app.set("env", "production");
const addon = ace(app);
const port = Number(process.env.PORT || addon.config.port());

// As ACE's template does: ACE reads the token from the query or a parsed form body.
app.use(express.json());
app.use(express.urlencoded({ extended: false }));
app.use(addon.middleware());

const PAGE = (title, user) => `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>${title}</title>
  <script src="https://connect-cdn.atl-paas.net/all.js" data-options="sizeToParent:true"></script>
</head>
<body>
  <section id="content" class="ac-content">
    <h1>Hello World</h1>
    <p>Signed in as ${user}.</p>
  </section>
</body>
</html>`;

app.get("/hello-world", addon.authenticate(), (req, res) => {
  const user = String(req.context.userAccountId || "anonymous").replace(/[<>&"]/g, "");
  res.type("html").send(PAGE("Hello World", user));
});

async function main() {
  const tenant = JSON.parse(process.env.ACE_TENANT || "null");
  if (tenant) {
    await addon.settings.connectionPromise;
    await addon.settings.saveInstallation(tenant, tenant.clientKey);
  }
  app.listen(port, "127.0.0.1", () => console.log(`ace peer listening on ${port}`));
}

main().catch(err => {
  console.error(err);
  process.exit(1);
});
