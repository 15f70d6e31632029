import { LitElement, html, type TemplateResult } from "lit";
import { config } from "../config";
import { navigate, parseRoute, type Route } from "./router";
import "./projects";
import "./images";
import "../annotate/workspace";
import "./review";
import "../work/queuePage";
import "./models";
import "./projectSettings";
import "./members";

/** Top-level shell: header, client-side routing, global link interception. */
export class SamApp extends LitElement {
  private route: Route = parseRoute(location.pathname);
  private online = navigator.onLine;

  protected override createRenderRoot(): HTMLElement {
    return this;
  }

  override connectedCallback(): void {
    super.connectedCallback();
    window.addEventListener("popstate", this.onPop);
    window.addEventListener("online", this.onOnline);
    window.addEventListener("offline", this.onOnline);
    document.addEventListener("click", this.onLink);
  }

  override disconnectedCallback(): void {
    window.removeEventListener("popstate", this.onPop);
    window.removeEventListener("online", this.onOnline);
    window.removeEventListener("offline", this.onOnline);
    document.removeEventListener("click", this.onLink);
    super.disconnectedCallback();
  }

  private readonly onPop = (): void => {
    this.route = parseRoute(location.pathname);
    this.requestUpdate();
  };

  private readonly onOnline = (): void => {
    this.online = navigator.onLine;
    this.requestUpdate();
  };

  private readonly onLink = (event: MouseEvent): void => {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
    const anchor = (event.target as Element | null)?.closest("a");
    if (!anchor || anchor.target || anchor.hasAttribute("download")) return;
    const url = new URL(anchor.href, location.href);
    if (url.origin !== location.origin || !url.pathname.startsWith("/projects") && url.pathname !== "/") return;
    event.preventDefault();
    navigate(url.pathname + url.search);
  };

  private page(): TemplateResult {
    const r = this.route;
    switch (r.page) {
      case "projects":
        return html`<projects-page></projects-page>`;
      case "images":
        return html`<images-page .projectId=${r.projectId}></images-page>`;
      case "workspace":
        return html`<annotation-workspace .projectId=${r.projectId} .imageId=${r.imageId}></annotation-workspace>`;
      case "review":
        return html`<review-page .projectId=${r.projectId}></review-page>`;
      case "queue":
        return html`<queue-page .projectId=${r.projectId}></queue-page>`;
      case "models":
        return html`<models-page .projectId=${r.projectId}></models-page>`;
      case "settings":
        return html`<project-settings-page .projectId=${r.projectId}></project-settings-page>`;
      case "members":
        return html`<members-page .projectId=${r.projectId}></members-page>`;
      default:
        return html`<main class="page"><h2>Not found</h2><a href="/">Back to projects</a></main>`;
    }
  }

  override render(): TemplateResult {
    const csrf = /(?:^|;\s*)csrftoken=([^;]+)/.exec(document.cookie)?.[1] ?? "";
    return html`
      <header class="topbar">
        <a class="brand" href="/">SAM Studio</a>
        ${this.online ? null : html`<span class="badge warn" role="status">Offline — changes wait for the network</span>`}
        <span class="spacer"></span>
        <span class="user" data-testid="user">${config.user.username}</span>
        <form method="post" action=${config.logoutUrl}>
          <input type="hidden" name="csrfmiddlewaretoken" .value=${decodeURIComponent(csrf)} />
          <button class="link" type="submit">Sign out</button>
        </form>
      </header>
      ${this.page()}
    `;
  }
}
customElements.define("sam-app", SamApp);
