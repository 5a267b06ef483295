// Time ranges of the sales reports: presets ending now, or whole days in the report's time
// zone. The API floors and ceils a range to whole buckets in that zone itself.

export type Preset = "24h" | "7d" | "30d" | "90d" | "365d" | "custom";

export const presets: { id: Preset; label: string; hours: number }[] = [
  { id: "24h", label: "Last 24 hours", hours: 24 },
  { id: "7d", label: "Last 7 days", hours: 7 * 24 },
  { id: "30d", label: "Last 30 days", hours: 30 * 24 },
  { id: "90d", label: "Last 90 days", hours: 90 * 24 },
  { id: "365d", label: "Last 12 months", hours: 365 * 24 },
];

const hour = 3600_000;

/** zoneOffset returns how far ahead of UTC the time zone's clocks are at the instant. */
function zoneOffset(timeZone: string, instant: number): number {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).formatToParts(new Date(instant));
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value);
  return Date.UTC(get("year"), get("month") - 1, get("day"), get("hour"), get("minute"), get("second")) - instant;
}

/**
 * startOfDay returns the instant a calendar day (YYYY-MM-DD) starts in the time zone. An
 * unknown zone counts as UTC here: the API then says what is wrong with it.
 */
export function startOfDay(day: string, timeZone: string): Date {
  const [y, m, d] = day.split("-").map(Number);
  const wall = Date.UTC(y, m - 1, d);
  try {
    // Twice: the offset at the first guess may differ from the offset at midnight (DST).
    const guess = wall - zoneOffset(timeZone, wall);
    return new Date(wall - zoneOffset(timeZone, guess));
  } catch {
    return new Date(wall);
  }
}

/** The calendar day (YYYY-MM-DD) of an instant in the time zone. */
export function dayIn(instant: Date, timeZone: string): string {
  try {
    return new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" }).format(instant);
  } catch {
    return instant.toISOString().slice(0, 10);
  }
}

export interface Range {
  from: Date;
  to: Date;
}

/** rangeOf returns the instants of a preset, or of whole days fromDay..toDay inclusive. */
export function rangeOf(preset: Preset, fromDay: string, toDay: string, timeZone: string, now = new Date()): Range {
  const p = presets.find((x) => x.id === preset);
  if (p) return { from: new Date(now.getTime() - p.hours * hour), to: now };
  const [y, m, d] = toDay.split("-").map(Number);
  const dayAfter = new Date(Date.UTC(y, m - 1, d + 1)).toISOString().slice(0, 10);
  return { from: startOfDay(fromDay, timeZone), to: startOfDay(dayAfter, timeZone) };
}

/** The time zones to offer: every zone the browser knows. */
export function timeZones(): string[] {
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  return zones.includes("UTC") ? zones : ["UTC", ...zones];
}
