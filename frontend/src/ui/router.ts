export type Route =
  | { page: "projects" }
  | { page: "images"; projectId: number }
  | { page: "workspace"; projectId: number; imageId: number }
  | { page: "review"; projectId: number }
  | { page: "queue"; projectId: number }
  | { page: "models"; projectId: number }
  | { page: "settings"; projectId: number }
  | { page: "members"; projectId: number }
  | { page: "notFound" };

export function parseRoute(path: string): Route {
  const parts = path.split("/").filter(Boolean);
  if (parts.length === 0) return { page: "projects" };
  if (parts[0] !== "projects") return { page: "notFound" };
  const projectId = Number(parts[1]);
  if (parts.length === 1) return { page: "projects" };
  if (!Number.isInteger(projectId)) return { page: "notFound" };
  if (parts.length === 2) return { page: "images", projectId };
  if (parts[2] === "review") return { page: "review", projectId };
  if (parts[2] === "queue") return { page: "queue", projectId };
  if (parts[2] === "models") return { page: "models", projectId };
  if (parts[2] === "settings") return { page: "settings", projectId };
  if (parts[2] === "members") return { page: "members", projectId };
  if (parts[2] === "images" && parts[3]) {
    const imageId = Number(parts[3]);
    if (Number.isInteger(imageId)) return { page: "workspace", projectId, imageId };
  }
  return { page: "notFound" };
}

export function navigate(path: string): void {
  if (location.pathname + location.search === path) return;
  history.pushState(null, "", path);
  window.dispatchEvent(new PopStateEvent("popstate"));
}
