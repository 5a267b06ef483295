// Search: what shoppers look for (searchInsights: frequent and zero-result queries) and the
// merchandisers' relevance controls that exist in the API: synonym rules, relevance
// weights, and products pinned to the top of a query.
import { useCallback, useEffect, useState, type FormEvent } from "react";
import { message, type Api } from "./api";
import { formatCount, formatTime } from "./format";

interface QueryStat {
  query: string;
  count: number;
  lastSeen: string;
}

interface SynonymRule {
  id: string;
  kind: "EQUIVALENT" | "ONE_WAY";
  terms: string[];
  synonyms: string[];
}

interface Weights {
  popularity: number;
  recency: number;
  margin: number;
}

interface PinnedProduct {
  id: string;
  sku: string;
  name: string;
}

interface QueryRule {
  query: string;
  pinnedProducts: PinnedProduct[];
  boosts: { brand: { id: string } | null; category: { id: string } | null; factor: number }[];
}

interface Controls {
  searchInsights: { topQueries: QueryStat[]; zeroResultQueries: QueryStat[] };
  synonymRules: SynonymRule[];
  relevanceWeights: Weights;
  queryRules: QueryRule[];
}

const controlsQuery = `query SearchControls {
  searchInsights(first: 20) { topQueries { query count lastSeen } zeroResultQueries { query count lastSeen } }
  synonymRules { id kind terms synonyms }
  relevanceWeights { popularity recency margin }
  queryRules { query pinnedProducts { id sku name } boosts { brand { id } category { id } factor } }
}`;

/** A list typed as "a, b, c". */
function words(s: string): string[] {
  return s
    .split(",")
    .map((w) => w.trim())
    .filter(Boolean);
}

export function SearchSection({ api }: { api: Api }) {
  const [controls, setControls] = useState<Controls | null>(null);
  const [error, setError] = useState("");
  const reload = useCallback(() => {
    api
      .request<Controls>(controlsQuery)
      .then((c) => {
        setControls(c);
        setError("");
      })
      .catch((e) => setError(message(e)));
  }, [api]);
  useEffect(reload, [reload]);

  return (
    <section className="search">
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {controls && (
        <>
          <div className="columns">
            <QueryStats title="Frequent queries" stats={controls.searchInsights.topQueries} testid="top-queries" />
            <QueryStats title="Queries that found nothing" stats={controls.searchInsights.zeroResultQueries} testid="zero-queries" />
          </div>
          <Synonyms api={api} rules={controls.synonymRules} onChange={reload} />
          <WeightsForm api={api} weights={controls.relevanceWeights} onChange={reload} />
          <Pins api={api} rules={controls.queryRules} onChange={reload} />
        </>
      )}
    </section>
  );
}

function QueryStats({ title, stats, testid }: { title: string; stats: QueryStat[]; testid: string }) {
  return (
    <div className="table-scroll">
      <table data-testid={testid}>
        <caption>{title}</caption>
        <thead>
          <tr>
            <th scope="col">Query</th>
            <th scope="col">Searches</th>
            <th scope="col">Last</th>
          </tr>
        </thead>
        <tbody>
          {stats.length === 0 && (
            <tr>
              <td colSpan={3}>None yet.</td>
            </tr>
          )}
          {stats.map((s) => (
            <tr key={s.query}>
              <th scope="row">{s.query}</th>
              <td>{formatCount(s.count)}</td>
              <td>{formatTime(s.lastSeen)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** DeleteButton deletes one rule of a list; label names the rule to screen readers. */
function DeleteButton({ label, busy, onClick }: { label: string; busy: boolean; onClick: () => void }) {
  return (
    <button type="button" className="quiet" aria-label={label} disabled={busy} onClick={onClick}>
      Delete
    </button>
  );
}

/** useMutation runs one mutation at a time and keeps its error for the form. */
function useMutation(api: Api, onDone: () => void) {
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const run = async (query: string, variables: Record<string, unknown>) => {
    setBusy(true);
    setError("");
    try {
      await api.request(query, variables);
      onDone();
      return true;
    } catch (e) {
      setError(message(e));
      return false;
    } finally {
      setBusy(false);
    }
  };
  return { error, busy, run, fail: setError };
}

function FormError({ error }: { error: string }) {
  return error ? (
    <p className="error" role="alert">
      {error}
    </p>
  ) : null;
}

function Synonyms({ api, rules, onChange }: { api: Api; rules: SynonymRule[]; onChange: () => void }) {
  const [kind, setKind] = useState<SynonymRule["kind"]>("EQUIVALENT");
  const [terms, setTerms] = useState("");
  const [synonyms, setSynonyms] = useState("");
  const m = useMutation(api, onChange);

  async function add(e: FormEvent) {
    e.preventDefault();
    const input = { kind, terms: words(terms), ...(kind === "ONE_WAY" ? { synonyms: words(synonyms) } : {}) };
    if (await m.run(`mutation PutSynonym($input: SynonymRuleInput!) { putSynonymRule(input: $input) { id } }`, { input })) {
      setTerms("");
      setSynonyms("");
    }
  }

  return (
    <section aria-labelledby="synonyms-title" className="panel">
      <h3 id="synonyms-title">Synonyms</h3>
      <ul className="rules" data-testid="synonym-rules">
        {rules.length === 0 && <li>No synonym rules.</li>}
        {rules.map((r) => (
          <li key={r.id}>
            <span>{r.kind === "EQUIVALENT" ? r.terms.join(" = ") : `${r.terms.join(", ")} → ${r.synonyms.join(", ")}`}</span>
            <DeleteButton
              label={`Delete the synonym rule ${r.terms.join(", ")}`}
              busy={m.busy}
              onClick={() => void m.run(`mutation DeleteSynonym($id: ID!) { deleteSynonymRule(id: $id) }`, { id: r.id })}
            />
          </li>
        ))}
      </ul>
      <form onSubmit={add} className="controls" aria-label="Add a synonym rule">
        <div>
          <label htmlFor="syn-kind">Kind</label>
          <select id="syn-kind" value={kind} onChange={(e) => setKind(e.target.value as SynonymRule["kind"])}>
            <option value="EQUIVALENT">Each finds the others</option>
            <option value="ONE_WAY">Terms also find synonyms</option>
          </select>
        </div>
        <div>
          <label htmlFor="syn-terms">Terms (comma-separated)</label>
          <input id="syn-terms" value={terms} onChange={(e) => setTerms(e.target.value)} placeholder="sofa, couch" />
        </div>
        {kind === "ONE_WAY" && (
          <div>
            <label htmlFor="syn-synonyms">Synonyms</label>
            <input id="syn-synonyms" value={synonyms} onChange={(e) => setSynonyms(e.target.value)} placeholder="sofa" />
          </div>
        )}
        <button type="submit" disabled={m.busy}>
          Add rule
        </button>
      </form>
      <FormError error={m.error} />
    </section>
  );
}

function WeightsForm({ api, weights, onChange }: { api: Api; weights: Weights; onChange: () => void }) {
  const [values, setValues] = useState({ popularity: String(weights.popularity), recency: String(weights.recency), margin: String(weights.margin) });
  const m = useMutation(api, onChange);
  useEffect(
    () => setValues({ popularity: String(weights.popularity), recency: String(weights.recency), margin: String(weights.margin) }),
    [weights],
  );

  function save(e: FormEvent) {
    e.preventDefault();
    const input = { popularity: Number(values.popularity), recency: Number(values.recency), margin: Number(values.margin) };
    void m.run(`mutation SetWeights($input: RelevanceWeightsInput!) { setRelevanceWeights(input: $input) { popularity } }`, { input });
  }

  return (
    <section aria-labelledby="weights-title" className="panel">
      <h3 id="weights-title">Relevance weights</h3>
      <p className="help">Boosts on top of text relevance; 0 turns one off.</p>
      <form onSubmit={save} className="controls" aria-label="Relevance weights">
        {(["popularity", "recency", "margin"] as const).map((k) => (
          <div key={k}>
            <label htmlFor={`weight-${k}`}>{k[0].toUpperCase() + k.slice(1)}</label>
            <input id={`weight-${k}`} type="number" step="any" value={values[k]} onChange={(e) => setValues({ ...values, [k]: e.target.value })} />
          </div>
        ))}
        <button type="submit" disabled={m.busy}>
          Save weights
        </button>
      </form>
      <FormError error={m.error} />
    </section>
  );
}

const putRule = `mutation PutQueryRule($input: QueryRuleInput!) { putQueryRule(input: $input) { query } }`;

function ruleInput(query: string, pinned: string[], boosts: QueryRule["boosts"]) {
  return {
    query,
    pinnedProductIds: pinned,
    // Boosts are kept as they are: this form edits pins only.
    boosts: boosts.map((b) => ({ brandId: b.brand?.id, categoryId: b.category?.id, factor: b.factor })),
  };
}

function Pins({ api, rules, onChange }: { api: Api; rules: QueryRule[]; onChange: () => void }) {
  const [query, setQuery] = useState("");
  const [sku, setSku] = useState("");
  const m = useMutation(api, onChange);

  async function pin(e: FormEvent) {
    e.preventDefault();
    const q = query.trim().toLowerCase().replace(/\s+/g, " ");
    let product: PinnedProduct | null;
    try {
      const r = await api.request<{ product: PinnedProduct | null }>(`query PinProduct($sku: String!) { product(sku: $sku) { id sku name } }`, { sku: sku.trim() });
      product = r.product;
    } catch (err) {
      m.fail(message(err));
      return;
    }
    if (!product) {
      m.fail(`No product has the SKU “${sku.trim()}”.`);
      return;
    }
    const rule = rules.find((r) => r.query === q);
    const pinned = [...(rule?.pinnedProducts.map((p) => p.id) ?? []), product.id];
    if (await m.run(putRule, { input: ruleInput(q, [...new Set(pinned)], rule?.boosts ?? []) })) setSku("");
  }

  return (
    <section aria-labelledby="pins-title" className="panel">
      <h3 id="pins-title">Pinned products</h3>
      <p className="help">Shown first, in this order, on the first page of a query's relevance sort without filters.</p>
      <ul className="rules" data-testid="query-rules">
        {rules.length === 0 && <li>No query rules.</li>}
        {rules.map((r) => (
          <li key={r.query}>
            <span>
              <strong>“{r.query}”</strong>: {r.pinnedProducts.map((p) => `${p.name} (${p.sku})`).join(", ") || "no pins"}
              {r.boosts.length > 0 && `, ${r.boosts.length} boosts`}
            </span>
            <DeleteButton
              label={`Delete the rule of “${r.query}”`}
              busy={m.busy}
              onClick={() => void m.run(`mutation DeleteQueryRule($q: String!) { deleteQueryRule(query: $q) }`, { q: r.query })}
            />
          </li>
        ))}
      </ul>
      <form onSubmit={pin} className="controls" aria-label="Pin a product">
        <div>
          <label htmlFor="pin-query">Query</label>
          <input id="pin-query" value={query} onChange={(e) => setQuery(e.target.value)} placeholder="oak table" />
        </div>
        <div>
          <label htmlFor="pin-sku">Product SKU</label>
          <input id="pin-sku" value={sku} onChange={(e) => setSku(e.target.value)} />
        </div>
        <button type="submit" disabled={m.busy}>
          Pin
        </button>
      </form>
      <FormError error={m.error} />
    </section>
  );
}
