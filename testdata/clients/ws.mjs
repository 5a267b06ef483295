// ws.mjs checks the server's graphql-transport-ws with the graphql-ws client library.
// Usage: node ws.mjs WS_URL HTTP_URL TOKEN PRODUCT_ID WAREHOUSE_ID
// It prints one JSON object: what each scenario saw.
//   alert:     a subscription to inventoryAlerts receives the alert of a stock change that
//              crosses the low-stock threshold (the script changes the stock over HTTP
//              until an alert arrives, at most 20 s);
//   complete:  the client's own unsubscribe completes without error;
//   duplicate: two subscriptions under one id close the socket with that code (4409);
//   badToken:  a connection_init with an invalid token closes with that code (4403).
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [wsURL, httpURL, token, productId, warehouseId] = process.argv.slice(2);
const alerts = `subscription Alerts($p: [ID!]) { inventoryAlerts(productIds: $p) { kind available } }`;

function client(opts = {}) {
  return createClient({ url: wsURL, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true, ...opts });
}

// closedWith resolves with the close code of the client's socket.
function closedWith(c) {
  return new Promise((resolve) => c.on('closed', (event) => resolve(event.code)));
}

async function setStock(quantity) {
  const res = await fetch(httpURL, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
    body: JSON.stringify({
      query: 'mutation Stock($p: ID!, $w: ID!, $q: Int!) { setStock(productId: $p, warehouseId: $w, quantity: $q, reason: "graphql-ws test") { available } }',
      variables: { p: productId, w: warehouseId, q: quantity },
    }),
  });
  const body = await res.json();
  if (body.errors) throw new Error(JSON.stringify(body.errors));
}

async function alertScenario() {
  const c = client({ connectionParams: { Authorization: `Bearer ${token}` } });
  const sub = c.iterate({ query: alerts, variables: { p: [productId] } });
  const first = sub.next();
  let got;
  first.then((r) => (got = r));
  for (let i = 0; i < 100 && !got; i++) {
    await setStock(i % 2 === 0 ? 0 : 1000);
    await new Promise((r) => setTimeout(r, 200));
  }
  const r = await Promise.race([first, new Promise((r) => setTimeout(() => r(null), 1000))]);
  const done = await sub.return(); // unsubscribes: the client sends complete
  await c.dispose();
  return { alert: r?.value?.data?.inventoryAlerts?.kind ?? JSON.stringify(r?.value ?? null), complete: done.done };
}

async function duplicateScenario() {
  const c = client({ connectionParams: { Authorization: `Bearer ${token}` }, generateID: () => 'same' });
  const closed = closedWith(c);
  const sink = { next() {}, error() {}, complete() {} };
  c.subscribe({ query: alerts, variables: { p: [productId] } }, sink);
  c.subscribe({ query: alerts, variables: { p: [productId] } }, sink);
  const code = await closed;
  await c.dispose();
  return code;
}

async function badTokenScenario() {
  const c = client({ connectionParams: { Authorization: 'Bearer not-a-token' } });
  const closed = closedWith(c);
  c.subscribe({ query: alerts }, { next() {}, error() {}, complete() {} });
  const code = await closed;
  await c.dispose();
  return code;
}

const out = { ...(await alertScenario()), duplicate: await duplicateScenario(), badToken: await badTokenScenario() };
console.log(JSON.stringify(out));
