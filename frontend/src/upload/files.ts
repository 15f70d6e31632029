/** Turns a drop (files, folders, zips) or a file picker's selection into files to upload. */
import type { UploadSource } from "./queue";

export const UPLOAD_EXTENSIONS = [".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".zip"] as const;
export const UPLOAD_ACCEPT = UPLOAD_EXTENSIONS.join(",");

export interface PickedFile {
  file: UploadSource;
  path: string;
}

export interface Picked {
  files: PickedFile[];
  /** Files left out: hidden ones and those neither an image nor a zip by name. */
  skipped: number;
}

export function isUploadable(name: string): boolean {
  const lower = name.toLowerCase();
  return !lower.startsWith(".") && UPLOAD_EXTENSIONS.some((ext) => lower.endsWith(ext));
}

export function pickFiles(entries: Iterable<PickedFile>): Picked {
  const files: PickedFile[] = [];
  let skipped = 0;
  for (const entry of entries) {
    if (isUploadable(entry.file.name)) files.push(entry);
    else skipped++;
  }
  return { files, skipped };
}

/** A file input's selection; a folder picker gives each file its path in the folder. */
export function fromFileList(list: FileList): Picked {
  return pickFiles(Array.from(list, (file) => ({ file, path: file.webkitRelativePath || file.name })));
}

function readAll(reader: FileSystemDirectoryReader): Promise<FileSystemEntry[]> {
  // readEntries answers in batches (100 in Chromium) until it answers an empty one.
  return new Promise((resolve, reject) => {
    const all: FileSystemEntry[] = [];
    const next = (): void => { reader.readEntries((batch) => {
        if (batch.length === 0) resolve(all);
        else {
          all.push(...batch);
          next();
        }
      }, reject); };
    next();
  });
}

function fileOf(entry: FileSystemFileEntry): Promise<File> {
  return new Promise((resolve, reject) => { entry.file(resolve, reject); });
}

/** Every file of a drop, walking dropped folders breadth first (deep trees cost no stack). The
 * entries must be taken from the DataTransfer during the drop event, before any await. */
export async function fromDataTransfer(transfer: DataTransfer): Promise<Picked> {
  const entries: FileSystemEntry[] = [];
  const loose: File[] = [];
  for (const item of Array.from(transfer.items)) {
    if (item.kind !== "file") continue;
    // Absent from some DOMs (the typings say otherwise): then the item is a loose file.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
    const entry = item.webkitGetAsEntry?.();
    if (entry) entries.push(entry);
    else {
      const file = item.getAsFile();
      if (file) loose.push(file);
    }
  }
  const found: PickedFile[] = loose.map((file) => ({ file, path: file.name }));
  let skipped = 0;
  // Folders push their children onto `entries`: the loop reaches them too.
  for (const entry of entries) {
    if (entry.name.startsWith(".")) skipped++;
    else if (entry.isDirectory) entries.push(...(await readAll((entry as FileSystemDirectoryEntry).createReader())));
    else found.push({ file: await fileOf(entry as FileSystemFileEntry), path: entry.fullPath.replace(/^\//, "") });
  }
  const picked = pickFiles(found);
  return { files: picked.files, skipped: picked.skipped + skipped };
}
