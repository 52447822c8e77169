/** Something progress is drawn on: process.stderr, or a test double. */
export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(s: string): unknown;
}

/** `1:05` or `1:02:03`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--';
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/**
 * Progress of a batch: on a terminal, one redrawn bar with rate and ETA; otherwise plain `done/total`
 * lines (at most one per `plainEveryMs`, and always the last), which logs and CI keep readable.
 */
export class Progress {
  private started = 0;
  private startDone: number | undefined;
  private lastDraw = 0;
  private lastLine = '';
  private done = 0;
  private total = 0;
  private note: string | undefined;

  constructor(
    private readonly out: ProgressStream,
    private readonly plainEveryMs = 1000,
    private readonly now: () => number = Date.now,
  ) {}

  update(done: number, total: number): void {
    if (this.startDone === undefined) {
      // Records already in the file do not count towards the rate.
      this.startDone = done;
      this.started = this.now();
    }
    this.done = done;
    this.total = total;
    const t = this.now();
    const last = done >= total;
    if (!last && t - this.lastDraw < (this.out.isTTY ? 100 : this.plainEveryMs)) return;
    this.lastDraw = t;
    this.draw();
  }

  /**
   * A note shown with the progress while it applies, e.g. that the batch is yielding to interactive
   * work; undefined clears it. Drawn at once when it changes.
   */
  setNote(note: string | undefined): void {
    if (note === this.note) return;
    this.note = note;
    if (this.startDone !== undefined) {
      this.lastDraw = this.now();
      this.draw();
    }
  }

  /** Ends the bar's line on a terminal, so later messages start on their own line. */
  end(): void {
    if (this.out.isTTY && this.lastLine) this.out.write('\n');
  }

  private draw(): void {
    const { done, total } = this;
    const note = this.note ? ` (${this.note})` : '';
    if (!this.out.isTTY) {
      const line = `${done}/${total}${note}`;
      if (line !== this.lastLine) this.out.write(line + '\n');
      this.lastLine = line;
      return;
    }
    const elapsed = (this.now() - this.started) / 1000;
    const rate = elapsed > 0 ? (done - (this.startDone ?? 0)) / elapsed : 0;
    const eta = rate > 0 ? (total - done) / rate : Infinity;
    const pct = total ? Math.floor((done / total) * 100) : 100;
    const tail = ` ${done}/${total} ${String(pct).padStart(3)}%  ${rate.toFixed(1)}/s  ETA ${done >= total ? '0:00' : formatDuration(eta)}${note}`;
    const width = Math.max(10, Math.min(40, (this.out.columns || 80) - tail.length - 3));
    const filled = total ? Math.round((done / total) * width) : width;
    this.lastLine = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]${tail}`;
    this.out.write(`\r${this.lastLine}\x1b[K`);
  }
}
