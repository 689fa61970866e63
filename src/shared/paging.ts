/**
 * Paging of every list (API.md: "Every list takes `limit` (default 100, max 1000) and `cursor`, and
 * returns `nextCursor` when there is more"): the query schema, the opaque cursor, the keyset clause
 * the store adds to its Kysely query, and the cut of a page of views at a byte budget.
 *
 * Keyset paging, never OFFSET: a list is read in a total order (a unique key, e.g. `created_at, id`)
 * and a page continues strictly after the last key of the one before, so a walk to the end sees every
 * row that existed when it began exactly once, whatever is added or deleted meanwhile, and a page
 * costs the same at any depth (an index on the order serves it; migration 0010).
 *
 * A cursor is `base64url(JSON [1, scope, ...key])`: version 1, a hash of the list and its filters
 * (tenant, `includeDeleted`, audit filters), and the last key of the page. It is not a secret and not
 * signed (the key only says where to continue inside the caller's own tenant, which the query names
 * separately); a cursor that does not decode, belongs to another list, tenant or filter, or holds a
 * key of the wrong shape answers `400 invalid_cursor`.
 */
import { createHash } from 'node:crypto';
import { type Static, Type } from '@sinclair/typebox';
import { type SelectQueryBuilder, sql } from 'kysely';
import { AppError } from '../errors/app-error.js';

/** Items per page when the request names no `limit`. */
export const DEFAULT_PAGE_LIMIT = 100;
/** The largest `limit` a request may ask for. */
export const MAX_PAGE_LIMIT = 1000;
/**
 * A page of views stops once its items' JSON passes this many bytes (at least one item is always
 * sent), so that a page of large items (mappings with trust anchors, identities with many versions)
 * stays a few MiB whatever `limit` says.
 */
export const PAGE_MAX_BYTES = 4 * 1024 * 1024;
/** Longest cursor accepted (the longest key, an alert's, encodes to about 300 characters). */
const MAX_CURSOR_LENGTH = 1024;
/** Longest string inside a cursor's key (ids, names of object types). */
const MAX_KEY_STRING = 512;

/** `limit` and `cursor`, the query parameters of every list; compose it with a list's own filters. */
export const PageQuery = Type.Object({
  limit: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: MAX_PAGE_LIMIT,
      default: DEFAULT_PAGE_LIMIT,
      description: `items per page (a page also stops after about ${PAGE_MAX_BYTES / 1024 / 1024} MiB of items)`,
    }),
  ),
  cursor: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: MAX_CURSOR_LENGTH,
      description: 'the nextCursor of the previous page, with the same filters',
    }),
  ),
});

/** The validated `limit` and `cursor` of a list request. */
export type PageQueryParams = Static<typeof PageQuery>;

/** What a list method of the store is asked for. `limit` is clamped to 1..{@link MAX_PAGE_LIMIT}. */
export interface PageRequest {
  limit: number;
  /** The `nextCursor` of the page before, unchanged. */
  cursor?: string | undefined;
}

/** One page as the store returns it: domain items in list order. */
export interface Page<T> {
  items: T[];
  /** Continues after the last item; absent at the end of the list. */
  nextCursor?: string;
  /** The cursor that continues after `items[index]` (used to end a page early, see {@link viewPage}). */
  cursorAfter(index: number): string;
}

/** `{ items, nextCursor? }`, a page as the API answers it (API.md "Collections"). */
export interface Collection<V> {
  items: V[];
  nextCursor?: string;
}

/** A value of a sort key column. */
type KeyValue = number | string;

/**
 * The total order of one list: its key columns (the last one unique, or the whole tuple unique),
 * all in one direction, and the type of each, which a cursor's key must match.
 */
export interface KeyOrder<Row> {
  /** Names the list in its cursors' scope, e.g. `mappings`. */
  readonly list: string;
  readonly columns: readonly (keyof Row & string)[];
  readonly direction: 'asc' | 'desc';
  readonly types: readonly ('integer' | 'string')[];
}

/** Reads a page from the request: `limit` from the query (or the default) and the cursor, if any. */
export function pageRequest(query: PageQueryParams): PageRequest {
  return { limit: query.limit ?? DEFAULT_PAGE_LIMIT, ...(query.cursor ? { cursor: query.cursor } : {}) };
}

/** The scope of a list's cursors: a short hash of the list name and its filters (tenant first). */
function scopeOf(list: string, filters: readonly (string | undefined)[]): string {
  const text = JSON.stringify([list, ...filters.map((f) => f ?? null)]);
  return createHash('sha256').update(text).digest('base64url').slice(0, 12);
}

function encodeCursor(scope: string, key: readonly KeyValue[]): string {
  return Buffer.from(JSON.stringify([1, scope, ...key]), 'utf8').toString('base64url');
}

function invalidCursor(): AppError {
  return new AppError(
    'invalid_cursor',
    'The cursor is not one this list gave with these filters; start again without it.',
  );
}

/**
 * The key a cursor continues after.
 * @throws AppError `invalid_cursor` when it does not decode, names another list, tenant or filter,
 *   or its key does not have the list's shape.
 */
function decodeCursor<Row>(order: KeyOrder<Row>, scope: string, cursor: string): KeyValue[] {
  if (cursor.length > MAX_CURSOR_LENGTH || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw invalidCursor();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalidCursor();
  }
  if (!Array.isArray(parsed) || parsed[0] !== 1 || parsed[1] !== scope) throw invalidCursor();
  const key = parsed.slice(2) as unknown[];
  if (key.length !== order.types.length) throw invalidCursor();
  key.forEach((value, i) => {
    const ok =
      order.types[i] === 'integer'
        ? Number.isSafeInteger(value)
        : typeof value === 'string' && value.length <= MAX_KEY_STRING;
    if (!ok) throw invalidCursor();
  });
  return key as KeyValue[];
}

/**
 * Adds the keyset clause to `query`: rows strictly after `after` in `order` (a row-value comparison,
 * `(created_at, id) > (?, ?)`, which SQLite and PostgreSQL both evaluate on an index), ordered by the
 * key, and one row more than `limit` to tell whether another page follows.
 */
export function keyset<DB, TB extends keyof DB, O>(
  query: SelectQueryBuilder<DB, TB, O>,
  order: KeyOrder<O>,
  after: readonly KeyValue[] | undefined,
  limit: number,
): SelectQueryBuilder<DB, TB, O> {
  let q = query;
  if (after !== undefined) {
    const columns = sql.join(order.columns.map((c) => sql.ref(c)));
    const op = sql.raw(order.direction === 'asc' ? '>' : '<');
    q = q.where(sql<boolean>`(${columns}) ${op} (${sql.join([...after])})`);
  }
  for (const column of order.columns) q = q.orderBy(sql.ref(column), order.direction);
  return q.limit(limit + 1);
}

/** Rows read per statement of {@link readPage}: at most a few MiB even of the largest rows. */
const READ_CHUNK = 100;

/** About how many bytes a row holds (strings by length, binary by size, numbers as 8). */
function rowBytes(row: object): number {
  let bytes = 0;
  for (const value of Object.values(row)) {
    if (typeof value === 'string') bytes += value.length;
    else if (value instanceof Uint8Array) bytes += value.byteLength;
    else bytes += 8;
  }
  return bytes;
}

/**
 * Reads one page of `query` in `order`: decodes the cursor (bound to `order.list` and `filters`),
 * runs the query through `database.read` (which translates driver errors) and maps the rows.
 * Rows are read {@link READ_CHUNK} at a time, each statement continuing after the last row of the
 * one before, and reading stops once the rows hold about {@link PAGE_MAX_BYTES} (at least one row
 * is read): `limit=1000` over rows of 64 KiB holds a few MiB in memory, not 64.
 * @throws AppError `invalid_cursor`
 */
export async function readPage<DB, TB extends keyof DB, O, T>(
  database: { read<R>(work: () => Promise<R>): Promise<R> },
  query: SelectQueryBuilder<DB, TB, O>,
  order: KeyOrder<O>,
  filters: readonly (string | undefined)[],
  request: PageRequest,
  map: (row: O) => T,
): Promise<Page<T>> {
  const limit = Math.min(Math.max(Math.trunc(request.limit) || 1, 1), MAX_PAGE_LIMIT);
  const scope = scopeOf(order.list, filters);
  const keyOf = (row: O) => order.columns.map((c) => row[c] as KeyValue);
  let after = request.cursor === undefined ? undefined : decodeCursor(order, scope, request.cursor);
  const kept: O[] = [];
  let bytes = 0;
  /** Whether a row follows the last one kept. */
  let more = false;
  let full = false;
  while (kept.length < limit && !full) {
    const chunk = Math.min(limit - kept.length, READ_CHUNK);
    const from = after;
    const rows = await database.read(() => keyset(query, order, from, chunk).execute());
    more = rows.length > chunk;
    for (const row of rows.slice(0, chunk)) {
      const size = rowBytes(row as object);
      if (kept.length > 0 && bytes + size > PAGE_MAX_BYTES) {
        more = true;
        full = true;
        break;
      }
      bytes += size;
      kept.push(row);
    }
    const last = kept.at(-1);
    if (!more || last === undefined) break;
    after = keyOf(last);
  }
  const keys = kept.map(keyOf);
  const cursorAfter = (index: number): string => {
    const key = keys[index];
    if (key === undefined) throw new RangeError(`no item ${index} on this page`);
    return encodeCursor(scope, key);
  };
  const page: Page<T> = { items: kept.map(map), cursorAfter };
  if (more) page.nextCursor = cursorAfter(kept.length - 1);
  return page;
}

/** Items mapped to views per call of {@link viewPage}'s `toViews` (a batch of version reads). */
const VIEW_BATCH = 50;

/**
 * Maps a store page to the API's `{ items, nextCursor? }`, a batch of {@link VIEW_BATCH} items at a
 * time, and ends the page early, with a cursor after the last item sent, once the views' JSON passes
 * `maxBytes` ({@link PAGE_MAX_BYTES}); the first item is sent whatever its size.
 */
export async function viewPage<T, V>(
  page: Page<T>,
  toViews: (items: T[]) => V[] | Promise<V[]>,
  maxBytes: number = PAGE_MAX_BYTES,
): Promise<Collection<V>> {
  const items: V[] = [];
  let bytes = 0;
  for (let start = 0; start < page.items.length; start += VIEW_BATCH) {
    for (const view of await toViews(page.items.slice(start, start + VIEW_BATCH))) {
      bytes += Buffer.byteLength(JSON.stringify(view), 'utf8');
      if (items.length > 0 && bytes > maxBytes) {
        return { items, nextCursor: page.cursorAfter(items.length - 1) };
      }
      items.push(view);
    }
  }
  return page.nextCursor === undefined ? { items } : { items, nextCursor: page.nextCursor };
}

/**
 * Every item of a list, read page by page ({@link MAX_PAGE_LIMIT} at a time): for Twoway's own full
 * reads (the expiry scan, the runtime's mapping index), which per-tenant quotas keep bounded.
 */
export async function everyItem<T>(read: (request: PageRequest) => Promise<Collection<T>>): Promise<T[]> {
  const all: T[] = [];
  let cursor: string | undefined;
  do {
    const page = await read({ limit: MAX_PAGE_LIMIT, cursor });
    all.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  return all;
}
