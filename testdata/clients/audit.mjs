// audit.mjs URL runs the graphql-http audit of the GraphQL-over-HTTP specification against
// the server at URL and prints one JSON line per audit: {id, name, status, reason}.
import { auditServer } from 'graphql-http';

const url = process.argv[2];
const results = await auditServer({ url });
for (const r of results) {
  let reason = r.reason;
  if (r.status !== 'ok' && r.response) {
    reason += ` (got ${r.response.status} ${r.response.headers.get('content-type')})`;
  }
  console.log(JSON.stringify({ id: r.id, name: r.name, status: r.status, reason }));
}
