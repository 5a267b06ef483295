// Stock: a searchable table of products and their levels per warehouse. A level is edited
// in a dialog with the API's own mutations (setStock, adjustStock, setLowStockThreshold);
// alerts refresh the products they name, and a gap in the alerts refreshes the table.
import { useCallback, useEffect, useRef, useState, type FormEvent } from "react";
import { message, type Api } from "./api";
import type { AlertFeed } from "./Alerts";
import { formatCount } from "./format";
import { levelFields, type Level, type StockProduct, type Warehouse } from "./levels";
import { StockEditor } from "./StockEditor";

// SKUs are not words that search finds: a query that could be one is also looked up as a SKU.
const stockQuery = `query StockTable($q: String!, $after: String, $bySku: Boolean!) {
  warehouses { id code name }
  exact: product(sku: $q) @include(if: $bySku) { id sku name inventory { ${levelFields} } }
  search(query: $q, first: 20, after: $after) {
    totalCount
    edges { node { id sku name inventory { ${levelFields} } } }
    pageInfo { hasNextPage endCursor }
  }
}`;

const levelsQuery = `query ProductLevels($id: ID!) { inventoryLevels(productId: $id) { ${levelFields} } }`;

interface StockPage {
  warehouses: Warehouse[];
  exact?: StockProduct | null;
  search: {
    totalCount: number;
    edges: { node: StockProduct }[];
    pageInfo: { hasNextPage: boolean; endCursor: string | null };
  };
}

export function StockSection({ api, alerts }: { api: Api; alerts: AlertFeed }) {
  const [text, setText] = useState("");
  const [query, setQuery] = useState("");
  const [warehouses, setWarehouses] = useState<Warehouse[]>([]);
  const [products, setProducts] = useState<StockProduct[]>([]);
  const [total, setTotal] = useState(0);
  const [next, setNext] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState("");
  const [editing, setEditing] = useState<{ product: StockProduct; warehouse: Warehouse } | null>(null);

  const load = useCallback(
    async (q: string, after: string | null) => {
      setLoading(true);
      setError("");
      try {
        const bySku = !after && /^\S+$/.test(q);
        const page = await api.request<StockPage>(stockQuery, { q, after, bySku });
        setWarehouses(page.warehouses);
        const found = page.search.edges.map((e) => e.node).filter((p) => p.id !== page.exact?.id);
        if (page.exact) found.unshift(page.exact);
        setProducts((old) => (after ? [...old, ...found] : found));
        const exactElsewhere = page.exact && !page.search.edges.some((e) => e.node.id === page.exact!.id);
        setTotal(page.search.totalCount + (exactElsewhere ? 1 : 0));
        setNext(page.search.pageInfo.hasNextPage ? page.search.pageInfo.endCursor : null);
      } catch (e) {
        setError(message(e));
      } finally {
        setLoading(false);
      }
    },
    [api],
  );

  useEffect(() => void load(query, null), [load, query, alerts.gaps]);

  const replaceLevels = useCallback((productId: string, levels: Level[]) => {
    setProducts((old) => old.map((p) => (p.id === productId ? { ...p, inventory: levels } : p)));
  }, []);

  // An alert names a product whose stock changed: refetch it when it is shown.
  const latest = alerts.list[0];
  const shown = useRef(products);
  shown.current = products;
  useEffect(() => {
    if (!latest || !shown.current.some((p) => p.id === latest.product.id)) return;
    api
      .request<{ inventoryLevels: Level[] }>(levelsQuery, { id: latest.product.id })
      .then((r) => replaceLevels(latest.product.id, r.inventoryLevels))
      .catch((e) => setError(message(e)));
  }, [api, latest, replaceLevels]);

  function submit(e: FormEvent) {
    e.preventDefault();
    setQuery(text.trim());
  }

  return (
    <section>
      <form className="toolbar" role="search" onSubmit={submit}>
        <label htmlFor="stock-q">Find products</label>
        <input id="stock-q" type="search" value={text} onChange={(e) => setText(e.target.value)} placeholder="Name, SKU or words" />
        <button type="submit">Search</button>
      </form>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <p className="help" aria-live="polite">
        {loading ? "Loading…" : `${formatCount(total)} products${query ? ` match “${query}”` : ", most popular first"}; showing ${formatCount(products.length)}.`}
      </p>
      <div className="table-scroll">
        <table className="stock" data-testid="stock-table">
          <caption className="visually-hidden">Stock per product and warehouse: units available, on hand, reserved, and the low-stock threshold</caption>
          <thead>
            <tr>
              <th scope="col">Product</th>
              {warehouses.map((w) => (
                <th scope="col" key={w.id} title={w.name}>
                  {w.code}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {products.map((p) => (
              <tr key={p.id} data-product={p.id}>
                <th scope="row">
                  <span className="name">{p.name}</span> <span className="sku">{p.sku}</span>
                </th>
                {warehouses.map((w) => (
                  <LevelCell key={w.id} product={p} warehouse={w} onEdit={() => setEditing({ product: p, warehouse: w })} />
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {next && (
        <button type="button" onClick={() => void load(query, next)} disabled={loading}>
          Show more
        </button>
      )}
      {editing && (
        <StockEditor
          api={api}
          product={editing.product}
          warehouse={editing.warehouse}
          level={editing.product.inventory.find((l) => l.warehouse.id === editing.warehouse.id)}
          onSaved={(level) => {
            const others = editing.product.inventory.filter((l) => l.warehouse.id !== editing.warehouse.id);
            replaceLevels(editing.product.id, [...others, level]);
          }}
          onClose={() => setEditing(null)}
        />
      )}
    </section>
  );
}

function LevelCell({ product, warehouse, onEdit }: { product: StockProduct; warehouse: Warehouse; onEdit: () => void }) {
  const level = product.inventory.find((l) => l.warehouse.id === warehouse.id);
  const low = level && level.available <= level.lowStockThreshold;
  return (
    <td data-label={warehouse.code} data-warehouse={warehouse.code} className={level ? (level.available === 0 ? "out" : low ? "low" : "") : "none"}>
      <span className="available" data-testid="available">
        {level ? formatCount(level.available) : "–"}
      </span>
      {level && (
        <span className="detail">
          {formatCount(level.quantity)} on hand, {formatCount(level.reserved)} reserved, low at {formatCount(level.lowStockThreshold)}
        </span>
      )}
      <button type="button" className="quiet edit" onClick={onEdit} aria-label={`Edit stock of ${product.name} in ${warehouse.code}`}>
        Edit
      </button>
    </td>
  );
}
