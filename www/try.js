// The "try a program" box on the first page: one program at a time through window.soket.run.

const source = document.getElementById('try-source');
const runButton = document.getElementById('try-run');
const stopButton = document.getElementById('try-stop');
const status = document.getElementById('try-status');
const output = document.getElementById('try-output');

let program = null;

runButton.addEventListener('click', async () => {
  program?.stop();
  output.textContent = '';
  status.textContent = 'running';
  stopButton.disabled = false;
  const current = window.soket.run('main.py', source.value, {
    onOutput: (stream, text) => {
      const piece = document.createElement('span');
      piece.className = stream;
      piece.textContent = text;
      output.append(piece);
    },
  });
  program = current;
  const { exitCode } = await current.done;
  if (program === current) {
    status.textContent = `exited ${exitCode}`;
    stopButton.disabled = true;
    program = null;
  }
});

stopButton.addEventListener('click', () => program?.stop());

window.soket.ready.then(
  () => { runButton.disabled = false; },
  () => { status.textContent = 'the Python runtime failed to load'; },
);
