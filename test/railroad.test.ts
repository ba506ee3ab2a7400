/**
 * docs/railroad.html: the grammar's railroad diagrams are what `npm run railroad` draws from the
 * parser today (regenerate after a grammar change), and the page draws every rule in Chromium from
 * its own files, with no request leaving the machine.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { nnParser } from '../grammar/parser.ts';
import { railroadFiles } from '../scripts/railroad.ts';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from './browser/harness.ts';
import { ROOT } from './helpers.ts';

describe('railroad diagrams of the grammar (docs/railroad.html)', () => {
  it('are current: the committed page and its scripts are what npm run railroad writes', () => {
    for (const [path, text] of railroadFiles()) {
      expect(existsSync(join(ROOT, path)), `${path} is missing: run npm run railroad`).toBe(true);
      expect(readFileSync(join(ROOT, path), 'utf8') === text, `${path} is stale: run npm run railroad`).toBe(true);
    }
  });

  it('draw one diagram per parser rule in Chromium, offline', async () => {
    const profile = mkdtempSync(join(tmpdir(), 'nnc-railroad-'));
    const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS, timeout: 60_000 });
    try {
      const page = context.pages()[0] ?? (await context.newPage());
      const requests: string[] = [];
      page.on('request', (r) => requests.push(r.url()));
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(pathToFileURL(join(ROOT, 'docs/railroad.html')).href);
      const drawn = await page.evaluate(() => ({
        rules: Array.from(document.querySelectorAll('.diagramHeader')).map((h) => h.textContent?.trim()),
        svgs: document.querySelectorAll('#diagrams svg.railroad-diagram').length,
      }));
      expect(errors).toEqual([]);
      const rules = nnParser.getGAstProductions();
      expect(drawn.rules).toEqual(Object.keys(rules));
      expect(drawn.svgs).toBe(Object.keys(rules).length);
      expect(requests.filter((u) => !u.startsWith('file://'))).toEqual([]);
    } finally {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    }
  });
});
