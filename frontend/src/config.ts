export interface AppConfig {
  user: { id: number; username: string };
  wasmPaths: string;
  webgpu: boolean;
  logoutUrl: string;
}

export function readConfig(): AppConfig {
  const element = document.getElementById("sam-config");
  const fallback: AppConfig = {
    user: { id: 0, username: "" },
    wasmPaths: "/static/app/ort/",
    webgpu: false,
    logoutUrl: "/accounts/logout/",
  };
  if (!element?.textContent) return fallback;
  return { ...fallback, ...(JSON.parse(element.textContent) as Partial<AppConfig>) };
}

export const config = readConfig();
