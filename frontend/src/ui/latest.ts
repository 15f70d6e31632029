/** Tickets for overlapping loads of one page: each load takes one, and only the holder of the
 * newest may show what it fetched (an older response can arrive after a newer one). */
export class LoadTickets {
  private issued = 0;

  /** A new ticket: the returned check is true until the next ticket is taken. */
  take(): () => boolean {
    const ticket = ++this.issued;
    return () => ticket === this.issued;
  }
}
