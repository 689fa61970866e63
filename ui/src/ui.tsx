import { createContext, type ReactNode, useCallback, useContext, useEffect, useRef, useState } from 'react';

const DAY_MS = 86_400_000;

/** `2026-12-06` from an RFC 3339 instant (UTC, as the API speaks). */
export function day(at: string | undefined): string {
  return at ? at.slice(0, 10) : '';
}

/** Whole days from now until `at`, rounded up (negative once past). */
export function daysUntil(at: string, now = Date.now()): number {
  return Math.ceil((Date.parse(at) - now) / DAY_MS);
}

/** Loads with `load` on mount and when `deps` change; `reload` runs it again. */
export function useLoad<T>(
  load: () => Promise<T>,
  deps: unknown[],
): { data?: T; error?: string; reload(): void } {
  const [state, setState] = useState<{ data?: T; error?: string }>({});
  const [tick, setTick] = useState(0);
  // biome-ignore lint/correctness/useExhaustiveDependencies: deps are the caller's
  useEffect(() => {
    let live = true;
    load().then(
      (data) => live && setState({ data }),
      (err: unknown) => live && setState({ error: err instanceof Error ? err.message : String(err) }),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  return { ...state, reload: useCallback(() => setTick((t) => t + 1), []) };
}

/**
 * A modal dialog on the native `<dialog>`: focus moves into it, Escape closes it, the page behind is
 * inert, and focus returns to the control that opened it.
 */
export function Dialog(props: { title: string; open: boolean; onClose(): void; children: ReactNode }) {
  const ref = useRef<HTMLDialogElement>(null);
  const opener = useRef<Element | null>(null);
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (props.open && !dialog.open) {
      opener.current = document.activeElement;
      dialog.showModal();
    } else if (!props.open && dialog.open) {
      dialog.close();
      if (opener.current instanceof HTMLElement) opener.current.focus();
    }
  }, [props.open]);
  const titleId = `dialog-${props.title.replace(/\W+/g, '-').toLowerCase()}`;
  return (
    <dialog ref={ref} aria-labelledby={titleId} onCancel={props.onClose} className="dialog">
      <h2 id={titleId}>{props.title}</h2>
      {props.open ? props.children : null}
    </dialog>
  );
}

/** A labelled form control with its error right under it (aria-describedby). */
export function Field(props: {
  label: string;
  id: string;
  error?: string | undefined;
  hint?: string;
  children: ReactNode;
}) {
  return (
    <div className="field">
      <label htmlFor={props.id}>{props.label}</label>
      {props.children}
      {props.hint ? (
        <p className="hint" id={`${props.id}-hint`}>
          {props.hint}
        </p>
      ) : null}
      {props.error ? (
        <p className="field-error" id={`${props.id}-error`} role="alert">
          {props.error}
        </p>
      ) : null}
    </div>
  );
}

const ToastContext = createContext<(message: string) => void>(() => undefined);

/** Toasts in the bottom-left corner, announced politely to screen readers. */
export function ToastProvider(props: { children: ReactNode }) {
  const [messages, setMessages] = useState<{ id: number; text: string }[]>([]);
  const show = useCallback((text: string) => {
    const id = Date.now() + Math.random();
    setMessages((m) => [...m, { id, text }]);
    setTimeout(() => setMessages((m) => m.filter((x) => x.id !== id)), 6000);
  }, []);
  return (
    <ToastContext.Provider value={show}>
      {props.children}
      <div className="toasts" role="status" aria-live="polite">
        {messages.map((m) => (
          <div className="toast" key={m.id}>
            {m.text}
          </div>
        ))}
      </div>
    </ToastContext.Provider>
  );
}

/** Shows a toast. */
export function useToast(): (message: string) => void {
  return useContext(ToastContext);
}

/** A page's load error, in words. */
export function LoadError(props: { error?: string | undefined }) {
  return props.error ? (
    <p className="banner banner-red" role="alert">
      {props.error}
    </p>
  ) : null;
}

/**
 * A table that scrolls sideways on a narrow screen: a named region that takes keyboard focus, so the
 * scroll is reachable without a mouse (WCAG 2.1.1).
 */
export function TableWrap(props: { label: string; children: ReactNode }) {
  return (
    // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrollable region must be focusable to scroll by keyboard
    <section className="table-wrap" aria-label={props.label} tabIndex={0}>
      {props.children}
    </section>
  );
}
