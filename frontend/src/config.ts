export interface AppConfig {
  user: { id: number; username: string };
  wasmPaths: string;
  webgpu: boolean;
  logoutUrl: string;
  /** Files up to this size are uploaded in one request, bigger ones in chunks of this size. */
  uploadChunkBytes: number;
}

export function readConfig(): AppConfig {
  const element = document.getElementById("sam-config");
  const fallback: AppConfig = {
    user: { id: 0, username: "" },
    wasmPaths: "/static/app/ort/",
    webgpu: false,
    logoutUrl: "/accounts/logout/",
    uploadChunkBytes: 8 * 1024 * 1024,
  };
  if (!element?.textContent) return fallback;
  return { ...fallback, ...(JSON.parse(element.textContent) as Partial<AppConfig>) };
}

export const config = readConfig();
