/** A set of picked ids over an ordered list, as file managers pick: a click toggles one, a
 * shift-click picks the range from the last clicked id (the anchor) to this one. */
export class Selection {
  private readonly picked = new Set<number>();
  private anchor: number | null = null;

  get size(): number {
    return this.picked.size;
  }

  has(id: number): boolean {
    return this.picked.has(id);
  }

  ids(): number[] {
    return [...this.picked];
  }

  /** Click on `id` within `order` (the ids as shown); `range` for a shift-click. */
  click(id: number, order: readonly number[], range = false): void {
    const from = this.anchor === null ? -1 : order.indexOf(this.anchor);
    const to = order.indexOf(id);
    if (range && from >= 0 && to >= 0) {
      // The range takes the anchor's state, as in a file manager.
      const on = this.picked.has(order[from] as number);
      const [a, b] = from < to ? [from, to] : [to, from];
      for (const each of order.slice(a, b + 1)) {
        if (on) this.picked.add(each);
        else this.picked.delete(each);
      }
    } else if (this.picked.has(id)) {
      this.picked.delete(id);
    } else {
      this.picked.add(id);
    }
    this.anchor = id;
  }

  selectAll(order: readonly number[]): void {
    for (const id of order) this.picked.add(id);
  }

  clear(): void {
    this.picked.clear();
    this.anchor = null;
  }

  /** Forget ids no longer shown (another page, another filter). */
  keepOnly(order: readonly number[]): void {
    const shown = new Set(order);
    for (const id of this.picked) if (!shown.has(id)) this.picked.delete(id);
    if (this.anchor !== null && !shown.has(this.anchor)) this.anchor = null;
  }
}
