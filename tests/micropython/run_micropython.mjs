// Run a MicroPython script under the real WebAssembly port (Node.js).
// usage: node run_micropython.mjs ROOT SCRIPT
//   ROOT   host folder copied into MicroPython's filesystem at /root (added to sys.path)
//   SCRIPT host file with the Python code to run
// MicroPython's stdout goes to stdout; an uncaught exception prints its traceback to
// stderr and exits with status 1.
import fs from "node:fs";
import path from "node:path";
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";

const [root, scriptPath] = process.argv.slice(2);
const mp = await loadMicroPython({
  heapsize: 64 * 1024 * 1024,
  pystack: 64 * 1024,
  linebuffer: false,
  stdout: (data) => process.stdout.write(typeof data === "string" ? data : Buffer.from(data)),
  stderr: (data) => process.stderr.write(typeof data === "string" ? data : Buffer.from(data)),
});

function copyTree(hostDir, mpDir) {
  try { mp.FS.mkdir(mpDir); } catch (e) { /* exists */ }
  for (const entry of fs.readdirSync(hostDir, { withFileTypes: true })) {
    const hostPath = path.join(hostDir, entry.name);
    const mpPath = mpDir + "/" + entry.name;
    if (entry.isDirectory()) copyTree(hostPath, mpPath);
    else if (entry.isFile()) mp.FS.writeFile(mpPath, fs.readFileSync(hostPath));
  }
}

if (root) copyTree(root, "/root");
const code = fs.readFileSync(scriptPath, "utf8");
// This port's gc.collect() cannot free what the running call's own C stack may reference, so a
// collection only frees garbage when it runs in a separate runPython call. A script is split at
// lines "# @gc": after each part a separate call collects, so the next part's gc.mem_alloc() is
// the live heap. After the last part the live heap is printed as "__MEM_ALLOC__ N".
const parts = code.split(/^# @gc$/m);
try {
  mp.runPython("import sys\nsys.path.insert(0, '/root')\n");
  for (const part of parts) {
    mp.runPython(part);
    mp.runPython("import gc\ngc.collect()\n");
  }
  mp.runPython("print('__MEM_ALLOC__', gc.mem_alloc())\n");
} catch (err) {
  process.stderr.write(String(err && err.message ? err.message : err) + "\n");
  process.exit(1);
}
