// The dialog that edits one product's stock in one warehouse: set the quantity on hand,
// adjust it by a delta, or change the low-stock threshold. Errors are the API's, shown as
// they come (BAD_USER_INPUT for a negative quantity, CONFLICT below the reserved units...).
import { useEffect, useRef, useState, type FormEvent } from "react";
import { message, type Api } from "./api";
import { levelFields, type Level, type StockProduct, type Warehouse } from "./levels";

const mutations = {
  set: `mutation SetStock($p: ID!, $w: ID!, $n: Int!, $reason: String!) { level: setStock(productId: $p, warehouseId: $w, quantity: $n, reason: $reason) { ${levelFields} } }`,
  adjust: `mutation AdjustStock($p: ID!, $w: ID!, $n: Int!, $reason: String!) { level: adjustStock(productId: $p, warehouseId: $w, delta: $n, reason: $reason) { ${levelFields} } }`,
  threshold: `mutation SetThreshold($p: ID!, $w: ID!, $n: Int!) { level: setLowStockThreshold(productId: $p, warehouseId: $w, threshold: $n) { ${levelFields} } }`,
};

type Action = keyof typeof mutations;

interface Props {
  api: Api;
  product: StockProduct;
  warehouse: Warehouse;
  level: Level | undefined;
  onSaved: (level: Level) => void;
  onClose: () => void;
}

export function StockEditor({ api, product, warehouse, level: initial, onSaved, onClose }: Props) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [level, setLevel] = useState(initial);
  const [quantity, setQuantity] = useState(String(level?.quantity ?? 0));
  const [delta, setDelta] = useState("");
  const [reason, setReason] = useState("count");
  const [threshold, setThreshold] = useState(String(level?.lowStockThreshold ?? 0));
  const [error, setError] = useState("");
  const [done, setDone] = useState("");
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    const d = dialog.current!;
    d.showModal();
    return () => d.close();
  }, []);

  async function run(action: Action, value: string) {
    setError("");
    setDone("");
    const n = Number(value);
    if (value.trim() === "" || !Number.isInteger(n)) {
      setError("Enter a whole number.");
      return;
    }
    setBusy(true);
    try {
      const vars = { p: product.id, w: warehouse.id, n, ...(action === "threshold" ? {} : { reason }) };
      const { level } = await api.request<{ level: Level }>(mutations[action], vars);
      onSaved(level);
      setLevel(level);
      setQuantity(String(level.quantity));
      setThreshold(String(level.lowStockThreshold));
      setDelta("");
      setDone(`Saved: ${level.available} available, ${level.quantity} on hand, low at ${level.lowStockThreshold}.`);
    } catch (e) {
      setError(message(e));
    } finally {
      setBusy(false);
    }
  }

  const submit = (action: Action, value: string) => (e: FormEvent) => {
    e.preventDefault();
    void run(action, value);
  };

  return (
    <dialog ref={dialog} className="editor" aria-labelledby="editor-title" onClose={onClose} data-testid="stock-editor">
      <h3 id="editor-title">
        {product.name} in {warehouse.code}
      </h3>
      <p className="help">
        {level ? `${level.available} available: ${level.quantity} on hand, ${level.reserved} reserved.` : "Not stocked in this warehouse yet."}
      </p>
      <label htmlFor="edit-reason">Reason (kept in the stock audit trail)</label>
      <input id="edit-reason" value={reason} onChange={(e) => setReason(e.target.value)} />
      <NumberForm id="edit-quantity" label="Units on hand" value={quantity} onChange={setQuantity} button="Set" busy={busy} onSubmit={submit("set", quantity)} />
      <NumberForm id="edit-delta" label="Adjust by (negative removes)" value={delta} onChange={setDelta} button="Adjust" busy={busy} onSubmit={submit("adjust", delta)} />
      <NumberForm id="edit-threshold" label="Low-stock threshold" value={threshold} onChange={setThreshold} button="Save threshold" busy={busy} onSubmit={submit("threshold", threshold)} />
      <div aria-live="assertive">
        {error && (
          <p className="error" role="alert" data-testid="editor-error">
            {error}
          </p>
        )}
      </div>
      <p className="done" role="status">
        {done}
      </p>
      <form method="dialog">
        <button type="submit" className="quiet">
          Close
        </button>
      </form>
    </dialog>
  );
}

interface NumberFormProps {
  id: string;
  label: string;
  value: string;
  onChange: (value: string) => void;
  button: string;
  busy: boolean;
  onSubmit: (e: FormEvent) => void;
}

/** NumberForm is a form of one whole number: the value of one of the editor's actions. */
function NumberForm({ id, label, value, onChange, button, busy, onSubmit }: NumberFormProps) {
  return (
    <form onSubmit={onSubmit} className="row" noValidate>
      <label htmlFor={id}>{label}</label>
      <input id={id} type="number" inputMode="numeric" value={value} onChange={(e) => onChange(e.target.value)} />
      <button type="submit" disabled={busy}>
        {button}
      </button>
    </form>
  );
}
