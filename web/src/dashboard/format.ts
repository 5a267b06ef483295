// Formatting for people. Money stays a decimal string end to end: Intl formats the string
// itself, so a figure shown is exactly the API's.
const money = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const count = new Intl.NumberFormat();

export function formatMoney(amount: string): string {
  // A string argument is formatted as an exact decimal (Intl.NumberFormat v3).
  return money.format(amount as unknown as number);
}

export function formatCount(n: number): string {
  return count.format(n);
}

export function formatTime(iso: string, timeZone?: string): string {
  return new Date(iso).toLocaleString(undefined, { timeZone, dateStyle: "medium", timeStyle: "short" });
}

export function formatClock(iso: string): string {
  return new Date(iso).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}
