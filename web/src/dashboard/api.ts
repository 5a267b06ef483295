// The dashboard's GraphQL client: queries and mutations over HTTP POST, subscriptions over
// one websocket (graphql-transport-ws, the graphql-ws library), the merchandiser's token
// sent with both. Only the public API: nothing here knows the server's internals.
import { createClient, type Client } from "graphql-ws";

/** An error the API answered with: its extensions.code and message. */
export class ApiError extends Error {
  readonly code: string;
  readonly path?: string;
  constructor(code: string, message: string, path?: string) {
    super(message);
    this.code = code;
    this.path = path;
  }
  /** The text shown to people: the code and the API's message. */
  get text(): string {
    return `${this.code}: ${this.message}`;
  }
}

interface GraphQLError {
  message: string;
  path?: (string | number)[];
  extensions?: { code?: string };
}

interface GraphQLResponse<T> {
  data?: T | null;
  errors?: GraphQLError[];
}

function toApiError(e: GraphQLError): ApiError {
  return new ApiError(e.extensions?.code ?? "INTERNAL", e.message, e.path?.join("."));
}

/** Connection events of the websocket, for the status shown in the header. */
export type LinkState = "connecting" | "live" | "reconnecting" | "refused";

export interface Api {
  request<T>(query: string, variables?: Record<string, unknown>): Promise<T>;
  subscribe<T>(query: string, variables: Record<string, unknown>, onData: (data: T) => void, onError: (e: ApiError) => void): () => void;
  close(): void;
}

const endpoint = "/graphql";

function websocketURL(): string {
  const u = new URL(endpoint, location.href);
  u.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  return u.href;
}

/**
 * newApi returns a client that signs its requests with token. onLink hears the
 * websocket's state; it says "live" again after every reconnection, with reconnected true.
 * onRefused is called when the server refuses the token (401, or 4403 on the websocket).
 */
export function newApi(token: string, onLink: (state: LinkState, reconnected: boolean) => void, onRefused: () => void): Api {
  const authorization = `Bearer ${token}`;
  let connections = 0;
  const ws: Client = createClient({
    url: websocketURL(),
    connectionParams: () => ({ Authorization: authorization }),
    lazy: true,
    keepAlive: 10_000,
    retryAttempts: Infinity,
    // 4403 is the server refusing the token: retrying cannot help.
    shouldRetry: (e) => !(e instanceof CloseEvent && e.code === 4403),
    on: {
      connecting: () => onLink(connections === 0 ? "connecting" : "reconnecting", false),
      connected: () => {
        connections++;
        onLink("live", connections > 1);
      },
      closed: (e) => {
        if (e instanceof CloseEvent && e.code === 4403) {
          onLink("refused", false);
          onRefused();
        } else if (connections > 0) {
          onLink("reconnecting", false);
        }
      },
    },
  });

  return {
    async request<T>(query: string, variables?: Record<string, unknown>): Promise<T> {
      const res = await fetch(endpoint, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/graphql-response+json, application/json", Authorization: authorization },
        body: JSON.stringify({ query, variables }),
      });
      let body: GraphQLResponse<T>;
      try {
        body = (await res.json()) as GraphQLResponse<T>;
      } catch {
        throw new ApiError("INTERNAL", `the server answered ${res.status} without a GraphQL response`);
      }
      if (res.status === 401) {
        onRefused();
      }
      if (body.errors?.length) {
        throw toApiError(body.errors[0]);
      }
      if (!body.data) {
        throw new ApiError("INTERNAL", `the server answered ${res.status} without data`);
      }
      return body.data;
    },

    subscribe<T>(query: string, variables: Record<string, unknown>, onData: (data: T) => void, onError: (e: ApiError) => void): () => void {
      return ws.subscribe<T>(
        { query, variables },
        {
          next: (r) => {
            if (r.errors?.length) onError(toApiError(r.errors[0] as GraphQLError));
            else if (r.data) onData(r.data as T);
          },
          error: (e) => {
            if (Array.isArray(e)) onError(toApiError(e[0] as GraphQLError));
            else if (!(e instanceof CloseEvent)) onError(new ApiError("INTERNAL", String(e)));
          },
          complete: () => {},
        },
      );
    },

    close: () => void ws.dispose(),
  };
}

/** message returns what to show for a failed request. */
export function message(e: unknown): string {
  if (e instanceof ApiError) return e.text;
  if (e instanceof Error) return e.message;
  return String(e);
}
