// Debian's Chromium (headless) driven by playwright-core, for the dashboard tests: the system binary,
// installed with apt-get when missing, never a browser download.

import { type Browser, chromium } from "playwright-core";
import { debianPackage } from "./debian-package.js";

export const CHROMIUM = debianPackage("/usr/bin/chromium", "chromium");
if (CHROMIUM === undefined) console.warn("dashboard browser tests skipped: /usr/bin/chromium is missing and Debian's chromium could not be installed with apt-get");

export function launchChromium(): Promise<Browser> {
  if (CHROMIUM === undefined) throw new Error("no Chromium: install Debian's chromium package");
  // As root in a container Chromium's sandbox cannot start; the page is our own, on loopback.
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
}
