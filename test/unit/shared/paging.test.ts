import { describe, expect, test } from 'vitest';
import { everyItem, type Page, type PageRequest, viewPage } from '../../../src/shared/paging.js';

/** A page of `items` whose cursors name the item they follow. */
function pageOf(items: string[], more: boolean): Page<string> {
  return {
    items,
    cursorAfter: (i) => `after:${items[i]}`,
    ...(more ? { nextCursor: `after:${items.at(-1)}` } : {}),
  };
}

describe('viewPage', () => {
  test('maps every item and keeps the store cursor while under the byte budget', async () => {
    const page = await viewPage(
      pageOf(['a', 'b', 'c'], true),
      (items) => items.map((i) => ({ id: i })),
      1000,
    );
    expect(page).toEqual({ items: [{ id: 'a' }, { id: 'b' }, { id: 'c' }], nextCursor: 'after:c' });
    expect(await viewPage(pageOf(['a'], false), (items) => items, 1000)).toEqual({ items: ['a'] });
  });

  test('ends the page at the byte budget with a cursor after the last item sent', async () => {
    const big = (id: string) => ({ id, pem: 'x'.repeat(90) });
    // Each view is about 110 bytes of JSON: three fit in 350, the fourth does not.
    const page = await viewPage(pageOf(['a', 'b', 'c', 'd', 'e'], false), (items) => items.map(big), 350);
    expect(page.items.map((v) => v.id)).toEqual(['a', 'b', 'c']);
    expect(page.nextCursor).toBe('after:c');
  });

  test('always sends the first item, however large', async () => {
    const page = await viewPage(pageOf(['a', 'b'], false), (items) => items.map((id) => id.repeat(500)), 10);
    expect(page).toEqual({ items: ['a'.repeat(500)], nextCursor: 'after:a' });
  });

  test('maps in batches and stops asking once the budget is spent', async () => {
    const ids = Array.from({ length: 120 }, (_, i) => `i${i}`);
    const batches: number[] = [];
    const page = await viewPage(
      pageOf(ids, false),
      (items) => {
        batches.push(items.length);
        return items.map((id) => ({ id, pad: 'x'.repeat(100) }));
      },
      60 * 120,
    );
    expect(batches).toEqual([50, 50]);
    expect(page.items.length).toBeGreaterThan(50);
    expect(page.items.length).toBeLessThan(100);
    expect(page.nextCursor).toBe(`after:${page.items.at(-1)?.id}`);
  });
});

test('everyItem follows nextCursor to the end, asking for the largest pages', async () => {
  const asked: PageRequest[] = [];
  const pages: Record<string, Page<string>> = {
    start: pageOf(['a', 'b'], true),
    'after:b': pageOf(['c'], true),
    'after:c': pageOf([], false),
  };
  const all = await everyItem(async (request) => {
    asked.push(request);
    return pages[request.cursor ?? 'start'] as Page<string>;
  });
  expect(all).toEqual(['a', 'b', 'c']);
  expect(asked.map((r) => [r.limit, r.cursor])).toEqual([
    [1000, undefined],
    [1000, 'after:b'],
    [1000, 'after:c'],
  ]);
});
