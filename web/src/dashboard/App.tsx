// The dashboard's frame: sign-in, the header with the live connection's state, the
// navigation between sections, and the alert subscription that runs whatever section is
// shown (stock follows it).
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { newApi, type Api, type LinkState } from "./api";
import { AlertsSection, useAlerts } from "./Alerts";
import { SalesSection } from "./Sales";
import { SearchSection } from "./Search";
import { forgetToken, saveToken, savedToken } from "./session";
import { SignIn } from "./SignIn";
import { StockSection } from "./Stock";

const sections = [
  { id: "alerts", label: "Alerts" },
  { id: "stock", label: "Stock" },
  { id: "sales", label: "Sales" },
  { id: "search", label: "Search" },
] as const;

type SectionId = (typeof sections)[number]["id"];

/** sectionFromHash returns the section the address names, or null for another anchor. */
function sectionFromHash(): SectionId | null {
  const id = location.hash.slice(1);
  return sections.find((s) => s.id === id)?.id ?? null;
}

export function App() {
  const [token, setToken] = useState(savedToken);
  const [refusedNote, setRefusedNote] = useState("");

  const signOut = useCallback((note = "") => {
    forgetToken();
    setToken("");
    setRefusedNote(note);
  }, []);

  if (!token) {
    return (
      <SignIn
        note={refusedNote}
        onSignIn={(t) => {
          saveToken(t);
          setRefusedNote("");
          setToken(t);
        }}
      />
    );
  }
  return <SignedIn key={token} token={token} onSignOut={signOut} />;
}

function SignedIn({ token, onSignOut }: { token: string; onSignOut: (note?: string) => void }) {
  const [link, setLink] = useState<LinkState>("connecting");
  const [reconnectedAt, setReconnectedAt] = useState<Date | null>(null);
  const api: Api = useMemo(
    () =>
      newApi(
        token,
        (state, reconnected) => {
          setLink(state);
          if (reconnected) setReconnectedAt(new Date());
        },
        () => onSignOut("The server refused the token (expired, or signed with another secret): paste a new one."),
      ),
    [token, onSignOut],
  );
  useEffect(() => () => api.close(), [api]);

  const alerts = useAlerts(api, reconnectedAt);
  const [section, setSection] = useState<SectionId>(() => sectionFromHash() ?? "alerts");
  const heading = useRef<HTMLHeadingElement>(null);
  const moved = useRef(false);
  useEffect(() => {
    const onHash = () => {
      const next = sectionFromHash();
      if (next) {
        moved.current = true;
        setSection(next);
      }
    };
    window.addEventListener("hashchange", onHash);
    return () => window.removeEventListener("hashchange", onHash);
  }, []);
  // Keyboard and screen reader users land on the new section's heading.
  useEffect(() => {
    if (moved.current) heading.current?.focus();
  }, [section]);

  const title = sections.find((s) => s.id === section)!.label;
  return (
    <>
      <a
        className="skip"
        href="#section-title"
        onClick={(e) => {
          e.preventDefault();
          heading.current?.focus();
        }}
      >
        Skip to content
      </a>
      <header className="top">
        <h1>Storefront dashboard</h1>
        <p className={`link link-${link}`} role="status" aria-live="polite" data-testid="link-state">
          {linkText[link]}
        </p>
        <button type="button" className="quiet" onClick={() => onSignOut()}>
          Sign out
        </button>
      </header>
      <nav aria-label="Sections" className="sections">
        <ul>
          {sections.map((s) => (
            <li key={s.id}>
              <a href={`#${s.id}`} aria-current={s.id === section ? "page" : undefined}>
                {s.label}
                {s.id === "alerts" && alerts.unread > 0 && (
                  <span className="count" aria-label={`${alerts.unread} new`}>
                    {alerts.unread}
                  </span>
                )}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <main id="content" aria-labelledby="section-title">
        <h2 id="section-title" ref={heading} tabIndex={-1}>
          {title}
        </h2>
        {section === "alerts" && <AlertsSection alerts={alerts} />}
        {section === "stock" && <StockSection api={api} alerts={alerts} />}
        {section === "sales" && <SalesSection api={api} />}
        {section === "search" && <SearchSection api={api} />}
      </main>
    </>
  );
}

const linkText: Record<LinkState, string> = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  refused: "Token refused",
};
