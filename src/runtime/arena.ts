/**
 * The `wasm` executor's allocator: buffers in one linear memory [base, end), handed out and taken
 * back in any order, with freed space reused for any later size.
 *
 * A two-level segregated-fit allocator (TLSF, Masmano et al. 2004): every block — used or free —
 * sits in a list of physical neighbours, so a freed block merges with free neighbours at once
 * (no two free blocks are ever adjacent); free blocks are also kept in lists by size class (8
 * classes per power of two, found through two bitmaps), so a request takes the smallest class that
 * surely fits, splits off what it does not need, and both allocation and release take constant
 * time. A request first looks in its own class for a block that fits (a buffer of the size just
 * freed, as in a recurrence's steps, is taken back). Memory is therefore bounded by the largest
 * set of buffers alive at one time (plus fragmentation), not by how many different sizes were
 * ever asked for. When nothing fits, the memory grows (`grow`), and the new space joins the free
 * block at the end.
 *
 * Sizes are multiples of 64 bytes (a cache line: packed GEMM panels want that alignment).
 */

/** Bytes per allocation unit. */
export const UNIT = 64;
const SL_LOG = 3;
const SL = 1 << SL_LOG;

/** A block of the arena: a buffer while in use (the executor's handle), or free space. */
export class Block {
  /** Byte address in the memory. */
  ptr: number;
  /** Bytes (a multiple of UNIT). */
  bytes: number;
  /** Floats the buffer was asked for (≤ bytes / 4). */
  len: number;
  /** 0 in use, 1 free, 2 merged into its lower neighbour (gone). */
  state: 0 | 1 | 2;
  prev: Block | null = null;
  next: Block | null = null;
  /** Free-list links (free blocks only). */
  fprev: Block | null = null;
  fnext: Block | null = null;
  /** The executor's cached view of the buffer (remade when the memory grows). */
  view: Float32Array | undefined;
  constructor(ptr: number, bytes: number, len: number, state: 0 | 1) {
    this.ptr = ptr;
    this.bytes = bytes;
    this.len = len;
    this.state = state;
  }
}

/** Size class of `u` units: u itself below 2·SL, then SL classes per power of two. */
function classOf(u: number): number {
  if (u < 2 * SL) return u;
  const e = 31 - Math.clz32(u);
  return (e - SL_LOG + 1) * SL + ((u >>> (e - SL_LOG)) - SL);
}
/** The smallest size (units) of class `c`. */
function classMin(c: number): number {
  if (c < 2 * SL) return c;
  const fl = c >>> SL_LOG;
  return (SL + (c & (SL - 1))) << (fl - 1);
}
/** Lowest set bit's index. */
function ctz(x: number): number {
  return 31 - Math.clz32(x & -x);
}

export interface ArenaStats {
  /** Bytes of buffers in use now, and the most at any one time so far. */
  readonly liveBytes: number;
  readonly peakLiveBytes: number;
  /** Free blocks (fragments). */
  readonly freeBlocks: number;
  /** End of the memory the arena manages. */
  readonly end: number;
}

export class Arena {
  private readonly heads: (Block | null)[];
  private readonly slBits: number[];
  private flBits = 0;
  private last: Block;
  private end: number;
  /** The highest address any buffer has reached. */
  private highWater: number;
  private live = 0;
  private peak = 0;
  private frees = 0;
  /** Allocations that used memory no earlier buffer had used (a warm call, repeating itself, makes none). */
  fresh = 0;
  private readonly grow: (missing: number, request: number) => number;

  /**
   * Manages [base, end); `grow(missing, request)` makes the memory at least `missing` bytes longer
   * (for a request of `request` bytes) and returns its new end, or throws (then nothing has changed).
   */
  constructor(base: number, end: number, grow: (missing: number, request: number) => number) {
    this.grow = grow;
    const start = Math.ceil(base / UNIT) * UNIT;
    const classes = classOf(Math.floor(2 ** 32 / UNIT)) + SL;
    this.heads = new Array<Block | null>(classes).fill(null);
    this.slBits = new Array<number>((classes >>> SL_LOG) + 1).fill(0);
    this.end = end;
    this.highWater = start;
    // a zero-size used sentinel at the start keeps every real block's `prev` non-null
    this.last = new Block(start, 0, 0, 0);
    if (end - start >= UNIT) this.append(start, Math.floor((end - start) / UNIT) * UNIT);
  }

  get stats(): ArenaStats {
    return { liveBytes: this.live, peakLiveBytes: this.peak, freeBlocks: this.frees, end: this.end };
  }

  /** A buffer of at least `bytes` bytes (a positive multiple of UNIT) holding `len` floats. */
  alloc(bytes: number, len: number): Block {
    let f = this.find(bytes);
    if (!f) {
      // the free block at the end (if any) grows by what is missing
      const tail = this.last.state === 1 ? this.last.bytes : 0;
      const oldEnd = this.end;
      this.end = this.grow(bytes - tail, bytes);
      const from = Math.floor(oldEnd / UNIT) * UNIT;
      const add = Math.floor((this.end - from) / UNIT) * UNIT;
      if (this.last.state === 1 && this.last.ptr + this.last.bytes === from) {
        this.unlink(this.last);
        this.last.bytes += add;
        this.link(this.last);
      } else this.append(from, add);
      f = this.find(bytes)!;
    }
    this.unlink(f);
    const b = new Block(f.ptr, bytes, len, 0);
    // b takes f's place in the physical list; the rest of f stays free after it
    b.prev = f.prev;
    b.prev!.next = b;
    if (f.bytes > bytes) {
      f.ptr += bytes;
      f.bytes -= bytes;
      f.prev = b;
      b.next = f;
      this.link(f);
    } else {
      f.state = 2;
      b.next = f.next;
      if (b.next) b.next.prev = b;
      else this.last = b;
    }
    if (b.ptr + bytes > this.highWater) {
      this.highWater = b.ptr + bytes;
      this.fresh++;
    }
    this.live += bytes;
    if (this.live > this.peak) this.peak = this.live;
    return b;
  }

  /** Returns a buffer; freeing one twice does nothing. */
  free(b: Block): void {
    if (b.state !== 0 || b.bytes === 0) return;
    this.live -= b.bytes;
    b.state = 1;
    b.view = undefined;
    const p = b.prev!;
    if (p.state === 1) {
      // merge into the free block below
      this.unlink(p);
      p.bytes += b.bytes;
      p.next = b.next;
      if (p.next) p.next.prev = p;
      else this.last = p;
      b.state = 2;
      b = p;
    }
    const n = b.next;
    if (n && n.state === 1) {
      this.unlink(n);
      b.bytes += n.bytes;
      b.next = n.next;
      if (b.next) b.next.prev = b;
      else this.last = b;
      n.state = 2;
    }
    this.link(b);
  }

  /** A free block of at least `bytes` bytes, or undefined. */
  private find(bytes: number): Block | undefined {
    const u = bytes / UNIT;
    let c = classOf(u);
    if (classMin(c) !== u) {
      // the request's own class holds sizes below it too: take the best fit among its first blocks
      let best: Block | undefined;
      let seen = 0;
      for (let x = this.heads[c] ?? null; x && seen < 16; x = x.fnext, seen++) {
        if (x.bytes >= bytes && (!best || x.bytes < best.bytes)) {
          best = x;
          if (x.bytes === bytes) break;
        }
      }
      if (best) return best;
      c++;
    }
    // the first non-empty class from c on: every block there fits
    let fl = c >>> SL_LOG;
    let m = (this.slBits[fl] ?? 0) & (~0 << (c & (SL - 1)));
    if (!m) {
      const f = fl + 1 < 32 ? this.flBits & (~0 << (fl + 1)) : 0;
      if (!f) return undefined;
      fl = ctz(f);
      m = this.slBits[fl]!;
    }
    return this.heads[(fl << SL_LOG) + ctz(m)]!;
  }

  /** A free block at the end of the physical list. */
  private append(ptr: number, bytes: number): void {
    if (bytes < UNIT) return;
    const f = new Block(ptr, bytes, 0, 1);
    f.prev = this.last;
    this.last.next = f;
    this.last = f;
    this.link(f);
  }

  private link(f: Block): void {
    const c = classOf(f.bytes / UNIT);
    f.fprev = null;
    f.fnext = this.heads[c] ?? null;
    if (f.fnext) f.fnext.fprev = f;
    this.heads[c] = f;
    this.slBits[c >>> SL_LOG] = (this.slBits[c >>> SL_LOG] ?? 0) | (1 << (c & (SL - 1)));
    this.flBits |= 1 << (c >>> SL_LOG);
    this.frees++;
  }

  private unlink(f: Block): void {
    const c = classOf(f.bytes / UNIT);
    if (f.fprev) f.fprev.fnext = f.fnext;
    else {
      this.heads[c] = f.fnext;
      if (!f.fnext) {
        const fl = c >>> SL_LOG;
        this.slBits[fl] = (this.slBits[fl] ?? 0) & ~(1 << (c & (SL - 1)));
        if (!this.slBits[fl]) this.flBits &= ~(1 << fl);
      }
    }
    if (f.fnext) f.fnext.fprev = f.fprev;
    f.fprev = f.fnext = null;
    this.frees--;
  }
}
