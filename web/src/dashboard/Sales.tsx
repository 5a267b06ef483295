// Sales: revenue, orders and units over time (salesAnalytics) with bucket, grouping, time
// zone and range controls; the range's totals and top products; today's and this hour's
// figures live from the salesTicker subscription.
import { useEffect, useMemo, useState } from "react";
import { message, type Api } from "./api";
import { formatCount, formatMoney } from "./format";
import { dayIn, presets, rangeOf, timeZones, type Preset } from "./ranges";
import { SalesChart, type ChartSeries } from "./SalesChart";

type Bucket = "HOUR" | "DAY" | "WEEK" | "MONTH";
type GroupBy = "NONE" | "CATEGORY" | "BRAND" | "PRODUCT";
type Metric = "revenue" | "orders" | "units";

interface Figures {
  revenue: string;
  orders: number;
  units: number;
  averageOrderValue: string | null;
  margin: string;
}

interface Point {
  bucketStart: string;
  revenue: string;
  orders: number;
  units: number;
}

interface Series {
  category: { name: string } | null;
  brand: { name: string } | null;
  product: { name: string; sku: string } | null;
  points: Point[];
  totals: Figures;
}

interface Report {
  from: string;
  to: string;
  timeZone: string;
  series: Series[];
  totals: Figures;
}

interface TopProduct {
  product: { id: string; sku: string; name: string };
  revenue: string;
  orders: number;
  units: number;
}

const figureFields = `revenue orders units averageOrderValue margin`;

const reportQuery = `query SalesReport($from: Time!, $to: Time!, $bucket: SalesBucket!, $groupBy: SalesGroupBy, $timeZone: String, $by: SalesMetric) {
  salesAnalytics(from: $from, to: $to, bucket: $bucket, groupBy: $groupBy, timeZone: $timeZone) {
    from to timeZone
    series {
      category { name } brand { name } product { name sku }
      points { bucketStart revenue orders units }
      totals { ${figureFields} }
    }
    totals { ${figureFields} }
  }
  topProducts(from: $from, to: $to, by: $by, first: 10) { product { id sku name } revenue orders units }
}`;

const tickerSubscription = `subscription SalesTicker {
  salesTicker { at today { ${figureFields} } thisHour { ${figureFields} } }
}`;

/** The most lines drawn: the other groups still count in the totals and the table. */
const maxLines = 8;

const bucketLabels: Record<Bucket, string> = { HOUR: "Hour", DAY: "Day", WEEK: "Week", MONTH: "Month" };
const groupLabels: Record<GroupBy, string> = { NONE: "Nothing (all sales)", CATEGORY: "Category", BRAND: "Brand", PRODUCT: "Product" };
const metricLabels: Record<Metric, string> = { revenue: "Revenue", orders: "Orders", units: "Units" };

function seriesName(s: Series): string {
  return s.category?.name ?? s.brand?.name ?? (s.product ? `${s.product.name} (${s.product.sku})` : "All sales");
}

function bucketLabel(iso: string, bucket: Bucket, timeZone: string): string {
  const opts: Intl.DateTimeFormatOptions =
    bucket === "HOUR"
      ? { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" }
      : bucket === "MONTH"
        ? { year: "numeric", month: "short" }
        : { year: "numeric", month: "short", day: "numeric" };
  return new Date(iso).toLocaleString(undefined, { ...opts, timeZone });
}

function metricValue(p: Point, m: Metric): number {
  return m === "revenue" ? Number(p.revenue) : p[m];
}

function formatMetric(p: Point, m: Metric): string {
  return m === "revenue" ? formatMoney(p.revenue) : formatCount(p[m]);
}

export function SalesSection({ api }: { api: Api }) {
  const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const [preset, setPreset] = useState<Preset>("30d");
  const [timeZone, setTimeZone] = useState("UTC");
  const [fromDay, setFromDay] = useState(() => dayIn(new Date(Date.now() - 6 * 86400_000), "UTC"));
  const [toDay, setToDay] = useState(() => dayIn(new Date(), "UTC"));
  const [bucket, setBucket] = useState<Bucket>("DAY");
  const [groupBy, setGroupBy] = useState<GroupBy>("NONE");
  const [metric, setMetric] = useState<Metric>("revenue");
  // The controls apply when the form is submitted; the time zone field may be half typed.
  const [asked, setAsked] = useState(() => ({ preset, timeZone, fromDay, toDay, bucket, groupBy, metric }));
  const [report, setReport] = useState<Report | null>(null);
  const [top, setTop] = useState<TopProduct[]>([]);
  const [error, setError] = useState("");
  const [loading, setLoading] = useState(false);
  const zones = useMemo(timeZones, []);

  useEffect(() => {
    let current = true;
    const range = rangeOf(asked.preset, asked.fromDay, asked.toDay, asked.timeZone);
    setLoading(true);
    api
      .request<{ salesAnalytics: Report; topProducts: TopProduct[] }>(reportQuery, {
        from: range.from.toISOString(),
        to: range.to.toISOString(),
        bucket: asked.bucket,
        groupBy: asked.groupBy,
        timeZone: asked.timeZone,
        by: asked.metric === "units" ? "UNITS" : "REVENUE",
      })
      .then((r) => {
        if (!current) return;
        setError("");
        setReport(r.salesAnalytics);
        setTop(r.topProducts);
      })
      .catch((e) => current && setError(message(e)))
      .finally(() => current && setLoading(false));
    return () => {
      current = false;
    };
  }, [api, asked]);

  return (
    <section className="sales">
      <LiveFigures api={api} />
      <form
        className="controls"
        aria-label="Report"
        onSubmit={(e) => {
          e.preventDefault();
          setAsked({ preset, timeZone: timeZone.trim(), fromDay, toDay, bucket, groupBy, metric });
        }}
      >
        <div>
          <label htmlFor="sales-range">Range</label>
          <select id="sales-range" value={preset} onChange={(e) => setPreset(e.target.value as Preset)}>
            {presets.map((p) => (
              <option key={p.id} value={p.id}>
                {p.label}
              </option>
            ))}
            <option value="custom">Days from … to …</option>
          </select>
        </div>
        {preset === "custom" && (
          <>
            <div>
              <label htmlFor="sales-from">From (first day)</label>
              <input id="sales-from" type="date" value={fromDay} onChange={(e) => setFromDay(e.target.value)} />
            </div>
            <div>
              <label htmlFor="sales-to">To (last day)</label>
              <input id="sales-to" type="date" value={toDay} onChange={(e) => setToDay(e.target.value)} />
            </div>
          </>
        )}
        <Choice id="sales-bucket" label="Bucket" labels={bucketLabels} value={bucket} onChange={setBucket} />
        <Choice id="sales-group" label="Group by" labels={groupLabels} value={groupBy} onChange={setGroupBy} />
        <Choice id="sales-metric" label="Chart" labels={metricLabels} value={metric} onChange={setMetric} />
        <div>
          <label htmlFor="sales-zone">Time zone</label>
          <input id="sales-zone" list="sales-zones" value={timeZone} onChange={(e) => setTimeZone(e.target.value)} aria-describedby="sales-zone-help" />
          <datalist id="sales-zones">
            {zones.map((z) => (
              <option key={z} value={z} />
            ))}
          </datalist>
          <small id="sales-zone-help">Yours: {browserZone}. Whole hours from UTC only.</small>
        </div>
        <button type="submit" disabled={loading}>
          {loading ? "Loading…" : "Show"}
        </button>
      </form>
      {error && (
        <p className="error" role="alert" data-testid="sales-error">
          {error}
        </p>
      )}
      {report && <ReportView report={report} bucket={asked.bucket} metric={asked.metric} top={top} />}
    </section>
  );
}

function ReportView({ report, bucket, metric, top }: { report: Report; bucket: Bucket; metric: Metric; top: TopProduct[] }) {
  // Every series has a point for every bucket of the range.
  const buckets = useMemo(() => report.series[0]?.points.map((p) => p.bucketStart) ?? [], [report]);
  const labels = useMemo(() => buckets.map((b) => bucketLabel(b, bucket, report.timeZone)), [buckets, bucket, report.timeZone]);
  const ranked = useMemo(() => [...report.series].sort((a, b) => Number(b.totals.revenue) - Number(a.totals.revenue)), [report]);
  const drawn = useMemo(() => ranked.slice(0, maxLines), [ranked]);
  const chartSeries: ChartSeries[] = useMemo(
    () => drawn.map((s) => ({ label: seriesName(s), values: s.points.map((p) => metricValue(p, metric)) })),
    [drawn, metric],
  );
  const t = report.totals;
  const description = `${metricLabels[metric]} per ${bucketLabels[bucket].toLowerCase()}, ${drawn.length} of ${report.series.length} series; the figures are in the table below.`;

  return (
    <>
      <p className="range" data-testid="sales-range">
        <time dateTime={report.from}>{new Date(report.from).toLocaleString(undefined, { timeZone: report.timeZone })}</time> to{" "}
        <time dateTime={report.to}>{new Date(report.to).toLocaleString(undefined, { timeZone: report.timeZone })}</time> ({report.timeZone})
      </p>
      <dl className="figures" data-testid="sales-totals" aria-label="Totals of the range">
        <Figure label="Revenue" value={formatMoney(t.revenue)} raw={t.revenue} />
        <Figure label="Orders" value={formatCount(t.orders)} raw={String(t.orders)} />
        <Figure label="Units" value={formatCount(t.units)} raw={String(t.units)} />
        <Figure label="Average order" value={t.averageOrderValue ? formatMoney(t.averageOrderValue) : "–"} raw={t.averageOrderValue ?? ""} />
        <Figure label="Margin" value={formatMoney(t.margin)} raw={t.margin} />
      </dl>
      {report.series.length === 0 ? (
        <p className="empty">No sales in this range.</p>
      ) : (
        <SalesChart labels={labels} series={chartSeries} description={description} />
      )}
      <details>
        <summary>The figures as a table</summary>
        <div className="table-scroll">
          <table data-testid="sales-table">
            <caption>
              {metricLabels[metric]} per {bucketLabels[bucket].toLowerCase()}
            </caption>
            <thead>
              <tr>
                <th scope="col">Bucket</th>
                {ranked.map((s, i) => (
                  <th scope="col" key={i}>
                    {seriesName(s)}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {buckets.map((b, row) => (
                <tr key={b}>
                  <th scope="row">
                    <time dateTime={b}>{labels[row]}</time>
                  </th>
                  {ranked.map((s, i) => (
                    <td key={i} data-value={metric === "revenue" ? s.points[row].revenue : s.points[row][metric]}>
                      {formatMetric(s.points[row], metric)}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </details>
      <h3>Top products</h3>
      <div className="table-scroll">
        <table data-testid="top-products">
          <thead>
            <tr>
              <th scope="col">Product</th>
              <th scope="col">Revenue</th>
              <th scope="col">Orders</th>
              <th scope="col">Units</th>
            </tr>
          </thead>
          <tbody>
            {top.map((p) => (
              <tr key={p.product.id}>
                <th scope="row">
                  {p.product.name} <span className="sku">{p.product.sku}</span>
                </th>
                <td>{formatMoney(p.revenue)}</td>
                <td>{formatCount(p.orders)}</td>
                <td>{formatCount(p.units)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}

/** Choice is a labelled select among the keys of labels, each shown as its label. */
function Choice<T extends string>({ id, label, labels, value, onChange }: { id: string; label: string; labels: Record<T, string>; value: T; onChange: (value: T) => void }) {
  return (
    <div>
      <label htmlFor={id}>{label}</label>
      <select id={id} value={value} onChange={(e) => onChange(e.target.value as T)}>
        {(Object.entries(labels) as [T, string][]).map(([v, l]) => (
          <option key={v} value={v}>
            {l}
          </option>
        ))}
      </select>
    </div>
  );
}

function Figure({ label, value, raw }: { label: string; value: string; raw: string }) {
  return (
    <div>
      <dt>{label}</dt>
      <dd data-value={raw}>{value}</dd>
    </div>
  );
}

interface Tick {
  at: string;
  today: Figures;
  thisHour: Figures;
}

/** Today's and this hour's figures, pushed by the server when they change. */
function LiveFigures({ api }: { api: Api }) {
  const [tick, setTick] = useState<Tick | null>(null);
  const [error, setError] = useState("");
  useEffect(
    () =>
      api.subscribe<{ salesTicker: Tick }>(
        tickerSubscription,
        {},
        (d) => {
          setError("");
          setTick(d.salesTicker);
        },
        (e) => setError(message(e)),
      ),
    [api],
  );
  return (
    <div className="live" aria-label="Live sales" role="region">
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {(["today", "thisHour"] as const).map((k) => (
        <div key={k} className="live-card" data-testid={`live-${k}`}>
          <h3>{k === "today" ? "Today (UTC)" : "This hour (UTC)"}</h3>
          <dl className="figures">
            <Figure label="Revenue" value={tick ? formatMoney(tick[k].revenue) : "…"} raw={tick?.[k].revenue ?? ""} />
            <Figure label="Orders" value={tick ? formatCount(tick[k].orders) : "…"} raw={tick ? String(tick[k].orders) : ""} />
            <Figure label="Units" value={tick ? formatCount(tick[k].units) : "…"} raw={tick ? String(tick[k].units) : ""} />
          </dl>
        </div>
      ))}
    </div>
  );
}
