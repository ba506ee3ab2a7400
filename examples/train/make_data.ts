/**
 * Training data for the examples `nnc train` trains alone (npm run train:dates | train:lm |
 * train:brackets), as JSON Lines (docs/training.md), seeded so every run writes the same files:
 *
 *   tsx examples/train/make_data.ts dates | brackets | lm
 *
 * - dates: human-written dates → ISO 8601, the formats of examples/train/train_translator.py (its
 *   reference), as text (examples/dates.nn declares vocabularies); the held-out dates never occur in
 *   training, in any format. examples/data/dates.{train,valid}.jsonl.
 * - brackets: strings over ( ) [ ] of length 2..16, balanced or not (half and half; the unbalanced
 *   ones mostly near misses, as train_classifier.py), ids 1..4; examples/data/brackets.{train,valid}.jsonl.
 * - lm: the docs corpus (examples/data/docs.{train,heldout}.txt) as windows of at most 129
 *   characters (the model reads 128 and predicts the next), as text through vocab/tiny_lm.json:
 *   12,000 at random offsets of the training text, the held-out text cut into consecutive windows.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Random } from '../../src/train/random.ts';

const DATA = join(import.meta.dirname, '..', 'data');
const write = (name: string, rows: readonly object[]) => {
  writeFileSync(join(DATA, name), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  process.stdout.write(`wrote examples/data/${name} (${rows.length} examples)\n`);
};

// ── dates ──
const MONTHS = ['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december'];
const WEEKDAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];
const FORMATS = [
  '{d} {month} {Y}', '{month} {d}, {Y}', '{d} {mon} {Y}', '{mon} {d} {Y}', '{mon}. {d}, {Y}', '{wd} {d} {mon} {Y}', '{wd}, {d} {mon} {Y}',
  '{weekday}, {month} {d}, {Y}', '{weekday} {d} {month} {Y}', '{weekday}, {th} {month} {Y}', '{Y}.{MM}.{DD}', '{Y}/{MM}/{DD}', '{Y} {month} {d}',
  '{DD}-{mon}-{Y}', '{d}. {month} {Y}', '{th} of {month} {Y}', 'the {th} of {month}, {Y}', '{month} the {th}, {Y}', '{month} {th} {Y}', '{th} {mon} {Y}',
];
const DAY = 86_400_000;
const FIRST = Date.UTC(1900, 0, 1) / DAY;
const LAST = Date.UTC(2099, 11, 31) / DAY;
const ordinal = (d: number) => `${d}${d % 100 >= 11 && d % 100 <= 13 ? 'th' : ({ 1: 'st', 2: 'nd', 3: 'rd' } as Record<number, string>)[d % 10] ?? 'th'}`;
const pad2 = (n: number) => String(n).padStart(2, '0');

function render(day: number, fmt: string): string {
  const t = new Date(day * DAY);
  const [Y, m, d] = [t.getUTCFullYear(), t.getUTCMonth(), t.getUTCDate()];
  const wd = WEEKDAYS[(t.getUTCDay() + 6) % 7]!; // Monday first, as Python's weekday()
  const v: Record<string, string> = {
    d: String(d), DD: pad2(d), MM: pad2(m + 1), Y: String(Y).padStart(4, '0'), month: MONTHS[m]!, mon: MONTHS[m]!.slice(0, 3), weekday: wd, wd: wd.slice(0, 3), th: ordinal(d),
  };
  return fmt.replace(/\{(\w+)\}/g, (_, k: string) => v[k]!);
}
const iso = (day: number) => new Date(day * DAY).toISOString().slice(0, 10);

function dates(): void {
  const r = new Random(0);
  const date = () => FIRST + r.below(LAST - FIRST + 1);
  const held = new Set<number>();
  while (held.size < 1000) held.add(date());
  const pair = (d: number) => ({ source: render(d, FORMATS[r.below(FORMATS.length)]!), target: iso(d) });
  const train: object[] = [];
  while (train.length < 24_000) {
    const d = date();
    if (!held.has(d)) train.push(pair(d));
  }
  write('dates.train.jsonl', train);
  write('dates.valid.jsonl', [...held].sort((a, b) => a - b).map(pair));
}

// ── brackets ──
const CHARS = '()[]';
const IDS: Record<string, number> = { '(': 1, ')': 2, '[': 3, ']': 4 };
const [MIN_LEN, MAX_LEN] = [2, 16];

function balanced(s: string): boolean {
  const stack: string[] = [];
  for (const c of s) {
    if (c === '(' || c === '[') stack.push(c);
    else if (stack.pop() !== (c === ')' ? '(' : '[')) return false;
  }
  return stack.length === 0;
}

function randomBalanced(r: Random, n: number): string {
  const out: string[] = [];
  const stack: string[] = [];
  for (let i = 0; i < n; i++) {
    const remaining = n - i;
    if (stack.length === 0 || (remaining > stack.length && r.next() < 0.5)) {
      const c = r.next() < 0.5 ? '(' : '[';
      stack.push(c);
      out.push(c);
    } else out.push(stack.pop() === '(' ? ')' : ']');
  }
  return out.join('');
}

/** A near miss: a balanced string with one edit (a swap, a changed, dropped or added character, a crossing pair). */
function nearMiss(r: Random): string {
  const n = MIN_LEN + 2 * r.below((MAX_LEN - MIN_LEN) / 2 + 1);
  const s = [...randomBalanced(r, n)];
  const k = r.below(5);
  if (k === 0) {
    const i = r.below(n - 1);
    [s[i], s[i + 1]] = [s[i + 1]!, s[i]!];
  } else if (k === 1) s[r.below(n)] = CHARS[r.below(4)]!;
  else if (k === 2) s.splice(r.below(n), 1);
  else if (k === 3) s.splice(r.below(n + 1), 0, CHARS[r.below(4)]!);
  else s.splice(r.below(n + 1), 0, ...(r.next() < 0.5 ? '([)]' : '[(])'));
  return s.join('').slice(0, MAX_LEN);
}

function brackets(): void {
  const r = new Random(1);
  const sample = (): string => {
    if (r.next() < 0.5) return randomBalanced(r, MIN_LEN + 2 * r.below((MAX_LEN - MIN_LEN) / 2 + 1));
    for (;;) {
      const s = r.next() < 0.8 ? nearMiss(r) : Array.from({ length: MIN_LEN + r.below(MAX_LEN - MIN_LEN + 1) }, () => CHARS[r.below(4)]).join('');
      if (s.length >= MIN_LEN && !balanced(s)) return s;
    }
  };
  const rows = (n: number, not: Set<string>) => {
    const out: { text: number[]; label: number }[] = [];
    while (out.length < n) {
      const s = sample();
      if (!not.has(s)) out.push({ text: [...s].map((c) => IDS[c]!), label: balanced(s) ? 1 : 0 });
    }
    return out;
  };
  const valid = rows(1000, new Set());
  const seen = new Set(valid.map((v) => v.text.map((i) => CHARS[i - 1]).join('')));
  write('brackets.train.jsonl', rows(8000, seen));
  write('brackets.valid.jsonl', valid);
}

// ── lm ──
function lm(): void {
  const read = (file: string) => readFileSync(join(DATA, file), 'utf8');
  // training: 12,000 windows at random offsets (as train_tiny_lm.py samples its 1,500 batches of 8);
  // the held-out text: consecutive windows, each character scored once
  const train = read('docs.train.txt');
  const r = new Random(2);
  write('lm.train.jsonl', Array.from({ length: 12000 }, () => {
    const i = r.below(train.length - 129 + 1);
    return { text: train.slice(i, i + 129) };
  }));
  const heldout = read('docs.heldout.txt');
  const valid: { text: string }[] = [];
  for (let i = 0; i + 2 <= heldout.length; i += 129) valid.push({ text: heldout.slice(i, i + 129) });
  write('lm.valid.jsonl', valid);
}

const which = process.argv[2];
const makers: Record<string, () => void> = { dates, brackets, lm };
if (!which || !makers[which]) {
  process.stderr.write(`usage: tsx examples/train/make_data.ts ${Object.keys(makers).join(' | ')}\n`);
  process.exit(2);
}
makers[which]!();
