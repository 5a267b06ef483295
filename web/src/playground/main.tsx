// The GraphiQL playground, bundled: queries over HTTP, subscriptions over websocket
// (graphql-transport-ws), the headers of the headers pane sent with both.
import "graphiql/setup-workers/vite";
import "graphiql/style.css";
import "./playground.css";
import { createGraphiQLFetcher } from "@graphiql/toolkit";
import { GraphiQL } from "graphiql";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { defaultHeaders, defaultTabs } from "./examples";

const endpoint = new URL("/graphql", location.href);
const wsEndpoint = new URL(endpoint);
wsEndpoint.protocol = location.protocol === "https:" ? "wss:" : "ws:";

const fetcher = createGraphiQLFetcher({
  url: endpoint.href,
  // The toolkit merges the headers pane into connection_init's payload, where the server
  // reads the Authorization of a websocket (browsers cannot set headers on one).
  subscriptionUrl: wsEndpoint.href,
});

createRoot(document.getElementById("graphiql")!).render(
  <StrictMode>
    <GraphiQL
      fetcher={fetcher}
      defaultTabs={defaultTabs}
      defaultHeaders={defaultHeaders}
      defaultEditorToolsVisibility="headers"
    />
  </StrictMode>,
);
