/** The navigation bar of a project's pages: its name, then one link per page, the current
 * one marked for assistive technology (`aria-current`). */
import { html, type TemplateResult } from "lit";

export type ProjectSection = "images" | "queue" | "review" | "members" | "settings" | "models";

const SECTIONS: readonly [ProjectSection, string, string][] = [
  ["images", "Images", ""],
  ["queue", "Queue", "queue"],
  ["review", "Review", "review"],
  ["members", "Members", "members"],
  ["settings", "Settings", "settings"],
  ["models", "Models", "models"],
];

export function projectSectionHref(projectId: number, section: ProjectSection): string {
  const path = SECTIONS.find(([key]) => key === section)?.[2] ?? "";
  return `/projects/${projectId}${path ? `/${path}` : ""}`;
}

export function projectNav(projectId: number, name: string | undefined, current: ProjectSection): TemplateResult {
  return html`<nav class="project-nav" aria-label="Project">
    <a href="/">Projects</a>
    <span aria-hidden="true">/</span>
    <strong class="project-nav-name">${name ?? "…"}</strong>
    <ul>
      ${SECTIONS.map(
        ([key, title]) => html`<li>
          <a href=${projectSectionHref(projectId, key)} aria-current=${key === current ? "page" : "false"}>${title}</a>
        </li>`,
      )}
    </ul>
  </nav>`;
}
