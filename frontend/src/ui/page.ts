/** Bases of the pages and panels that render into the light DOM, so the app's stylesheet
 * applies, and fetch their data when they are connected. */
import { LitElement } from "lit";
import { messageOf } from "../api/work";

export abstract class LoadingPage extends LitElement {
  protected override createRenderRoot(): HTMLElement {
    return this;
  }

  override connectedCallback(): void {
    super.connectedCallback();
    void this.load();
  }

  /** (Re)load the page's data from the REST API. */
  protected abstract load(): Promise<void>;
}

/** A page whose buttons each run one request, then show its outcome and reload. */
export abstract class ActionPage extends LoadingPage {
  protected error = "";
  protected notice = "";

  /** Run `action`; on success show `done` and reload, on failure show why. */
  protected async act(action: () => Promise<unknown>, done: string): Promise<boolean> {
    this.error = "";
    this.notice = "";
    try {
      await action();
      this.notice = done;
      await this.load();
      return true;
    } catch (error) {
      this.error = messageOf(error);
      this.requestUpdate();
      return false;
    }
  }
}
