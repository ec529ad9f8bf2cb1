// Check: runs an exercise's check (www/lessons/README.md, "How Check runs") against the learner's
// programs in their panels, and resolves with the verdict `{ passed, text }`.
//
// The check's own programs (its setup and its script) run as programs of the page like the learner's,
// hidden, with two more modules: `soket_check` (www/course/soket_check.py) and `_soket_results`, the
// record of what happened to the learner's programs, which this module writes.

// How long a server may take to listen (a UDP server never does: it is given that long, then checked).
const LISTEN_WITHIN_MS = 5000;
// How long the setup may take to listen (a stand-in server) or to end (one that prepares the lab).
const SETUP_WITHIN_MS = 20000;
// How long the check script itself may run.
const SCRIPT_WITHIN_MS = 30000;
// A moment for output already written to reach the page before the record is taken.
const SETTLE_MS = 150;
// The names the check's programs run under; a learner's program is never named so (names end in .py).
const SETUP = 'check setup';
const SCRIPT = 'check';
// The verdict line's mark (soket_check.VERDICT_MARK).
const VERDICT_MARK = '\x1esoket-verdict ';

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

let support = null;
/** soket_check.py, fetched once. */
function supportModule() {
  support ??= fetch(new URL('../course/soket_check.py', import.meta.url)).then((response) => {
    if (!response.ok) throw new Error(`course/soket_check.py: ${response.status}`);
    return response.text();
  });
  return support;
}

/** What the check's programs import besides the standard library. */
async function modules(record) {
  // A JSON text as a Python string literal: JSON's escapes are Python's too.
  const data = JSON.stringify(JSON.stringify(record));
  return [
    { module: 'soket_check', file: 'course/soket_check.py', source: await supportModule(), package: false },
    { module: '_soket_results', file: '_soket_results.py', source: `DATA = ${data}\n`, package: false },
  ];
}

/** Resolves with true once `name` listens, or false when `done` settles first or the time is up. */
function listening(soket, name, done, within = LISTEN_WITHIN_MS) {
  return new Promise((resolve) => {
    const finish = (result) => {
      clearTimeout(timer);
      soket.removeEventListener('listeners', look);
      resolve(result);
    };
    const look = () => {
      if (soket.listeners().some((l) => l.program === name)) finish(true);
    };
    const timer = setTimeout(() => finish(false), within);
    soket.addEventListener('listeners', look);
    done.then(() => finish(false));
    look();
  });
}

/**
 * Runs `exercise`'s check. `panels` maps each program's name to its ProgramPanel; `lang` is the
 * learner's language ('id' or 'en').
 */
export async function runCheck(soket, exercise, panels, lang) {
  const { check } = exercise;
  const record = { lang, programs: {}, setup: null };
  // Every piece of output of the programs this check runs, by name.
  const output = new Map();
  const hear = ({ detail }) => {
    const entry = output.get(detail.name);
    if (entry) entry[detail.stream] += detail.text;
  };
  const track = (name) => output.set(name, { stdout: '', stderr: '' });
  soket.addEventListener('output', hear);
  const ports = (name) => soket.listeners().filter((l) => l.program === name).map((l) => l.port);
  let setup = null;
  let setupExit = null;
  try {
    await Promise.all([...panels.values()].map((panel) => panel.stop()));

    if (check.setup) {
      track(SETUP);
      setup = soket.run(SETUP, check.setup, { modules: await modules(record), stdin: '' });
      setup.done.then((o) => { setupExit = o.exitCode; });
      const listens = await listening(soket, SETUP, setup.done, SETUP_WITHIN_MS);
      await sleep(SETTLE_MS);
      if (setupExit !== null && setupExit !== 0) {
        return bug(lang, `its setup failed: ${lastLine(output.get(SETUP).stderr)}`);
      }
      if (!listens && setupExit === null) {
        return bug(lang, `its setup neither listened nor ended within ${SETUP_WITHIN_MS / 1000} s`);
      }
    }

    const runs = new Map();
    for (const program of exercise.programs.filter((p) => p.role === 'server')) {
      track(program.name);
      const panel = panels.get(program.name);
      const ended = panel.run();
      runs.set(program.name, { exitCode: null });
      ended.then((o) => { runs.get(program.name).exitCode = o?.exitCode ?? null; });
      await listening(soket, program.name, ended);
    }
    for (const program of exercise.programs.filter((p) => p.role === 'client')) {
      track(program.name);
      const panel = panels.get(program.name);
      const ended = panel.run({ stdin: program.stdin ?? undefined });
      const timedOut = await Promise.race([ended.then(() => false), sleep(check.timeout * 1000).then(() => true)]);
      if (timedOut) await panel.stop();
      const outcome = await ended;
      runs.set(program.name, { exitCode: outcome?.exitCode ?? null, timedOut });
    }
    await sleep(SETTLE_MS);
    if (setup) {
      record.setup = { role: 'setup', ...output.get(SETUP), exit_code: setupExit, ports: ports(SETUP) };
    }
    for (const program of exercise.programs) {
      const run = runs.get(program.name);
      record.programs[program.name] = {
        role: program.role,
        ...output.get(program.name),
        exit_code: run.exitCode,
        timed_out: run.timedOut ?? false,
        ports: ports(program.name),
      };
    }

    track(SCRIPT);
    const driver = `import soket_check\nsoket_check._run(${JSON.stringify(check.script)})\n`;
    const script = soket.run(SCRIPT, driver, { modules: await modules(record), stdin: '' });
    const late = await Promise.race([script.done.then(() => false), sleep(SCRIPT_WITHIN_MS).then(() => true)]);
    if (late) script.stop();
    const result = await script.done;
    const line = result.stdout.split('\n').find((l) => l.startsWith(VERDICT_MARK));
    if (!line) {
      const why = late ? `it was still running after ${SCRIPT_WITHIN_MS / 1000} s` : lastLine(result.stderr);
      return bug(lang, why);
    }
    const verdict = JSON.parse(line.slice(VERDICT_MARK.length));
    return { passed: verdict.passed === true, text: String(verdict.text) };
  } finally {
    soket.removeEventListener('output', hear);
    setup?.stop();
    await Promise.all(exercise.programs.filter((p) => p.role === 'server').map((p) => panels.get(p.name).stop()));
  }
}

function lastLine(text) {
  const lines = text.trim().split('\n');
  return lines[lines.length - 1] || 'no error message';
}

/** The verdict when the check itself went wrong: the lesson's fault, not the learner's. */
function bug(lang, why) {
  console.error('the check failed to run:', why);
  return {
    passed: false,
    text: lang === 'id'
      ? `pemeriksaan latihan ini sendiri bermasalah (${why}); ini kesalahan pelajaran, bukan Anda — beri tahu pengajar Anda.`
      : `this exercise's check itself went wrong (${why}); that is the lesson's fault, not yours — please tell your teacher.`,
  };
}
