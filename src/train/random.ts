/**
 * A seeded pseudo-random generator (Tommy Ettinger's SplitMix32 variant "Mulberry32"): one uint32 of
 * state, so that a run's shuffling and initial weights follow from `--seed` alone and its state can
 * be saved in a checkpoint and restored exactly. Not for cryptography.
 */
export class Random {
  constructor(public state: number) {
    this.state = state >>> 0;
  }

  /** A uniform number in [0, 1) (32 random bits). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** A whole number in [0, n). */
  below(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** A standard normal number (Box–Muller). */
  normal(): number {
    const u = 1 - this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  /** Fisher–Yates, in place. */
  shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = this.below(i + 1);
      [xs[i], xs[j]] = [xs[j]!, xs[i]!];
    }
    return xs;
  }
}

/** The generator of one purpose ('data', 'init') of a run with seed `seed` in epoch `epoch`: independent streams. */
export function streamOf(seed: number, purpose: 'data' | 'init', epoch = 0): Random {
  let h = 2166136261;
  for (const c of `${purpose}:${seed >>> 0}:${epoch}`) h = Math.imul(h ^ c.charCodeAt(0), 16777619);
  return new Random(h >>> 0);
}
