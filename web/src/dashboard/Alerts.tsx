// Live inventory alerts: the inventoryAlerts subscription, newest first, with a badge when
// the subscription lagged (the server dropped alerts for this slow tab) or reconnected
// (alerts sent while it was away are lost).
import { useEffect, useRef, useState } from "react";
import { message, type Api } from "./api";
import { formatClock, formatCount } from "./format";

export interface InventoryAlert {
  /** The committed stock change's id: the same alert from a redelivery has the same id. */
  id: string;
  kind: "LOW_STOCK" | "OUT_OF_STOCK" | "BACK_IN_STOCK";
  available: number;
  at: string;
  lagged: boolean;
  product: { id: string; sku: string; name: string };
  warehouse: { id: string; code: string; name: string };
}

const alertsSubscription = `subscription DashboardAlerts {
  inventoryAlerts {
    id kind available at lagged
    product { id sku name }
    warehouse { id code name }
  }
}`;

/** How many alerts the list keeps: older ones fall off the end. */
const keep = 200;

export interface AlertFeed {
  list: InventoryAlert[];
  unread: number;
  /** When alerts may have been missed: the last lagged alert or reconnection. */
  missedSince: { reason: "lagged" | "reconnected"; at: Date } | null;
  /** Bumped whenever alerts may have been missed: views of stock refetch on it. */
  gaps: number;
  error: string;
  markRead(): void;
  dismissMissed(): void;
}

export function useAlerts(api: Api, reconnectedAt: Date | null): AlertFeed {
  const [list, setList] = useState<InventoryAlert[]>([]);
  const [unread, setUnread] = useState(0);
  const [missedSince, setMissedSince] = useState<AlertFeed["missedSince"]>(null);
  const [gaps, setGaps] = useState(0);
  const [error, setError] = useState("");
  const shown = useRef<string[]>([]);

  useEffect(
    () =>
      api.subscribe<{ inventoryAlerts: InventoryAlert }>(
        alertsSubscription,
        {},
        ({ inventoryAlerts: a }) => {
          setError("");
          // An alert seen already (delivered again after a reconnection) is not shown twice.
          if (shown.current.includes(a.id)) return;
          shown.current = [a.id, ...shown.current].slice(0, keep);
          setList((old) => [a, ...old].slice(0, keep));
          setUnread((n) => n + 1);
          if (a.lagged) {
            setMissedSince({ reason: "lagged", at: new Date() });
            setGaps((n) => n + 1);
          }
        },
        (e) => setError(message(e)),
      ),
    [api],
  );
  useEffect(() => {
    if (reconnectedAt) {
      setMissedSince({ reason: "reconnected", at: reconnectedAt });
      setGaps((n) => n + 1);
    }
  }, [reconnectedAt]);

  return {
    list,
    unread,
    missedSince,
    gaps,
    error,
    markRead: () => setUnread(0),
    dismissMissed: () => setMissedSince(null),
  };
}

const kindText: Record<InventoryAlert["kind"], string> = {
  LOW_STOCK: "Low stock",
  OUT_OF_STOCK: "Out of stock",
  BACK_IN_STOCK: "Back in stock",
};

export function AlertsSection({ alerts }: { alerts: AlertFeed }) {
  const { markRead } = alerts;
  // Alerts shown are read, also those that arrive while the list is shown.
  useEffect(() => markRead(), [markRead, alerts.list.length]);

  return (
    <section aria-describedby="alerts-help">
      <p id="alerts-help" className="help">
        Stock changes that cross a warehouse's low-stock threshold, as they are committed, newest first.
      </p>
      {alerts.missedSince && (
        <p className={`badge badge-${alerts.missedSince.reason}`} role="status" data-testid="alerts-missed">
          {alerts.missedSince.reason === "lagged"
            ? "Lagged: the server dropped alerts this page was too slow to take."
            : "Reconnected: alerts sent while the connection was down are missing."}{" "}
          Stock levels were refetched ({formatClock(alerts.missedSince.at.toISOString())}).{" "}
          <button type="button" className="quiet" onClick={alerts.dismissMissed}>
            Dismiss
          </button>
        </p>
      )}
      {alerts.error && (
        <p className="error" role="alert">
          {alerts.error}
        </p>
      )}
      <ol className="alerts" role="log" aria-live="polite" aria-label="Inventory alerts, newest first" data-testid="alerts">
        {alerts.list.length === 0 && <li className="empty">No alerts since this page opened.</li>}
        {alerts.list.map((a) => (
          <li key={a.id} data-alert={a.id} className={`alert alert-${a.kind}`} data-kind={a.kind} data-product={a.product.id} data-warehouse={a.warehouse.code}>
            <div className="head">
              <span className="kind">{kindText[a.kind]}</span>
              <time dateTime={a.at}>{formatClock(a.at)}</time>
            </div>
            <div className="what">
              <strong>{a.product.name}</strong> <span className="sku">{a.product.sku}</span>
            </div>
            <div className="where">
              <abbr title={a.warehouse.name}>{a.warehouse.code}</abbr>: {formatCount(a.available)} available
              {a.lagged && <span className="badge badge-lagged">lagged</span>}
            </div>
          </li>
        ))}
      </ol>
    </section>
  );
}
