// The hosted pages carry no inline script (their content security policy forbids it): behaviour is declared with
// data attributes and wired here. Everything works without this file except the copy button.

// <button data-copy="input-id" data-copied="Copied">: copies the input's value and says so.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const input = document.getElementById(button.dataset.copy);
  input.select();
  try {
    await navigator.clipboard.writeText(input.value);
  } catch {
    document.execCommand("copy");
  }
  const status = document.getElementById("copy-status");
  if (status) status.textContent = button.dataset.copied;
  const label = button.textContent;
  button.textContent = button.dataset.copied;
  setTimeout(() => { button.textContent = label; }, 2000);
});
