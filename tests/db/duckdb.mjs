// duckdb.mjs OUTDIR SCHEMA - the checks of postgres.sh, in DuckDB (Node's
// @duckdb/node-api, when installed): the tables of SCHEMA filled with
// COPY ... (HEADER), and rejects read by read_csv with no options at all.
// Prints the sums as postgres.sh's query does, `name|count|sum|...`.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

// From the node_modules directory postgres.sh names (ESM has no NODE_PATH).
const require = createRequire(process.env.NODE_PATH + "/");
const { DuckDBInstance } = require("@duckdb/node-api");

const [dir, schema] = process.argv.slice(2);
const con = await (await DuckDBInstance.create(":memory:")).connect();
await con.run(readFileSync(schema, "utf8"));
for (const t of ["totals", "rejects", "itemize"])
	await con.run(`COPY ${t} FROM '${dir}/${t}.csv' (HEADER)`);
const q = async (sql) =>
	(await con.runAndReadAll(sql)).getRows()[0].map(String).join("|");
console.log(await q(`SELECT 'totals', count(*), sum(records), sum(late_records),
	sum(voice_seconds), sum(sms_count), sum(data_bytes), sum(voice_charge),
	sum(sms_charge), sum(data_charge), sum(allowance_credit),
	sum(recurring_charge), sum(outage_credit), sum(total) FROM totals`));
console.log(await q(`SELECT 'rejects', count(*), sum(line) FROM rejects`));
console.log(await q(`SELECT 'itemize', count(*), sum(quantity), sum(charge) FROM itemize`));
// No options: the sniffer must find the header, the five columns and the
// same rows (the text rule keeps it valid UTF-8).
console.log(await q(`SELECT 'rejects-auto', count(*), sum(line) FROM read_csv('${dir}/rejects.csv')`));
