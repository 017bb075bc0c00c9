#!/usr/bin/env python3
"""Generates the man pages and the bash completion of lazyblob and lazyblobd from their
--help text, so the three can never disagree. Run at build time (tools/docs.cmake).

  gen_docs.py --lazyblob BIN --lazyblobd BIN --out DIR

Writes DIR/man/lazyblob.1, DIR/man/lazyblobd.8, DIR/completion/lazyblob and
DIR/completion/lazyblobd. The help text is CLI11's: "Usage:" lines, "Options:",
"Positionals:" and "Subcommands:" blocks of two-space-indented entries whose descriptions
start at column 30 (or on the next line, deeper indented), then free text (the footer).
"""
import argparse
import os
import re
import subprocess

DESC_COL = 30


def run_help(argv):
    out = subprocess.run(argv + ["--help"], capture_output=True, text=True, check=True)
    return out.stdout


class Entry:
    def __init__(self, spec, desc):
        self.spec = spec      # "-q,--quiet" or "--store TEXT=/var/lib/lazyblob (Env:...)"
        self.desc = desc

    def names(self):
        head = self.spec.split(" ", 1)[0]
        return [n for n in head.split(",") if n.startswith("-")]

    def takes_value(self):
        rest = self.spec.split(" ", 1)[1] if " " in self.spec else ""
        return bool(re.match(r"(TEXT|INT|FLOAT|UINT|\[)", rest.strip()))

    def choices(self):
        m = re.search(r":\{([^}]*)\}", self.spec)
        return m.group(1).split(",") if m else []


class Help:
    """One --help text split into its parts."""

    def __init__(self, text):
        self.intro, self.usage, self.footer = [], "", []
        self.blocks = {}  # "Options" / "Positionals" / "Subcommands" -> [Entry]
        block = None
        seen_block = False
        for line in text.splitlines():
            m = re.match(r"^(Options|Positionals|Subcommands):$", line)
            if m:
                block = m.group(1)
                self.blocks[block] = []
                seen_block = True
                continue
            if line.startswith("Usage:"):
                self.usage = line[len("Usage:"):].strip()
                continue
            if block and line.startswith("  ") and not line.startswith("   ") and line.strip():
                spec, desc = line[2:DESC_COL].rstrip(), line[DESC_COL:].strip()
                if len(line) > DESC_COL and line[DESC_COL - 1] != " ":
                    spec, desc = line.strip(), ""  # a long spec: description on the next line
                self.blocks[block].append(Entry(spec, desc))
                continue
            if block and line.startswith(" " * DESC_COL) and self.blocks[block]:
                e = self.blocks[block][-1]
                e.desc = (e.desc + " " + line.strip()).strip()
                continue
            if block and not line.strip():
                if self.blocks[block]:
                    block = None
                continue
            if not seen_block:
                if line.strip():
                    self.intro.append(line)
            else:
                block = None
                self.footer.append(line)
        while self.footer and not self.footer[0].strip():
            self.footer.pop(0)
        while self.footer and not self.footer[-1].strip():
            self.footer.pop()


def roff_escape(s):
    s = s.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + s if s.startswith((".", "'")) else s


def roff_entries(entries):
    out = []
    for e in entries:
        out += [".TP", "\\fB" + roff_escape(e.spec) + "\\fR", roff_escape(e.desc or "")]
    return out


def roff_verbatim(lines):
    if not lines:
        return []
    return [".PP", ".nf"] + [roff_escape(l) for l in lines] + [".fi"]


def man_page(name, section, summary, top, verbs, version):
    out = [f'.TH {name.upper()} {section} "" "lazyblob {version}" "lazyblob manual"',
           ".SH NAME", f"{name} \\- {roff_escape(summary)}",
           ".SH SYNOPSIS", "\\fB" + roff_escape(top.usage) + "\\fR",
           ".SH DESCRIPTION"] + [roff_escape(" ".join(top.intro))]
    for block in ("Positionals", "Options"):
        if top.blocks.get(block):
            out += [".SH " + block.upper()] + roff_entries(top.blocks[block])
    if verbs:
        out += [".SH COMMANDS"]
        for verb, h in verbs:
            out += [".SS " + verb, "\\fB" + roff_escape(h.usage) + "\\fR", ".PP",
                    roff_escape(" ".join(h.intro))]
            for block in ("Positionals", "Options"):
                entries = [e for e in h.blocks.get(block, []) if e.spec != "-h,--help"]
                out += roff_entries(entries)
            # The verb's own examples; the exit codes are the same for all (below).
            foot = h.footer
            if "Exit status:" in foot:
                foot = foot[:foot.index("Exit status:")]
            out += roff_verbatim([l for l in foot if l.strip() != ""] and foot)
    out += [".SH NOTES"] + roff_verbatim(top.footer)
    out += [".SH SEE ALSO",
            "\\fBlazyblob\\fR(1), \\fBlazyblobd\\fR(8), /usr/share/doc/lazyblob/README.md"]
    return "\n".join(out) + "\n"


def words(names):
    return " ".join(sorted(set(names)))


def completion_lazyblob(top, verbs):
    value_opts = [n for e in top.blocks.get("Options", []) if e.takes_value() for n in e.names()]
    global_opts = [n for e in top.blocks.get("Options", []) for n in e.names()]
    cases, choice_cases = [], {}
    for verb, h in verbs:
        opts = [n for e in h.blocks.get("Options", []) for n in e.names()]
        value_opts += [n for e in h.blocks.get("Options", []) if e.takes_value() for n in e.names()]
        for e in h.blocks.get("Options", []):
            for n in e.names():
                if e.choices():
                    choice_cases[n] = e.choices()
        cases.append(f'    {verb}) opts="{words(opts)}" ;;')
    choice_lines = [f'    {n}) COMPREPLY=($(compgen -W "{" ".join(c)}" -- "$cur")); return ;;'
                    for n, c in sorted(choice_cases.items())]
    return f"""# bash completion for lazyblob. Generated from `lazyblob --help` by tools/gen_docs.py.
_lazyblob() {{
  local cur=${{COMP_WORDS[COMP_CWORD]}} prev=${{COMP_WORDS[COMP_CWORD-1]}}
  local verbs="{words(v for v, _ in verbs)}"
  local value_opts=" {words(value_opts)} "
  local verb="" i
  for ((i = 1; i < COMP_CWORD; i++)); do
    case ${{COMP_WORDS[i]}} in
      -*) [[ $value_opts == *" ${{COMP_WORDS[i]}} "* ]] && ((i++)) ;;
      *) verb=${{COMP_WORDS[i]}}; break ;;
    esac
  done
  case $prev in
{chr(10).join(choice_lines)}
  esac
  if [[ $value_opts == *" $prev "* ]]; then
    COMPREPLY=($(compgen -f -- "$cur"))
    return
  fi
  if [[ -z $verb ]]; then
    if [[ $cur == -* ]]; then
      COMPREPLY=($(compgen -W "{words(global_opts)}" -- "$cur"))
    else
      COMPREPLY=($(compgen -W "$verbs" -- "$cur"))
    fi
    return
  fi
  local opts=""
  case $verb in
{chr(10).join(cases)}
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}}
complete -o filenames -F _lazyblob lazyblob
"""


def completion_lazyblobd(top):
    opts = [n for e in top.blocks.get("Options", []) for n in e.names()]
    value_opts = [n for e in top.blocks.get("Options", []) if e.takes_value() for n in e.names()]
    return f"""# bash completion for lazyblobd. Generated from `lazyblobd --help` by tools/gen_docs.py.
_lazyblobd() {{
  local cur=${{COMP_WORDS[COMP_CWORD]}} prev=${{COMP_WORDS[COMP_CWORD-1]}}
  case $prev in
    --log-level) COMPREPLY=($(compgen -W "debug info warn error off" -- "$cur")); return ;;
    --log-format) COMPREPLY=($(compgen -W "text json" -- "$cur")); return ;;
  esac
  if [[ " {words(value_opts)} " == *" $prev "* ]]; then
    COMPREPLY=($(compgen -f -- "$cur"))
    return
  fi
  COMPREPLY=($(compgen -W "{words(opts)}" -- "$cur"))
}}
complete -o filenames -F _lazyblobd lazyblobd
"""


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    # Rewrite only on change, so a rebuild does not reinstall identical files.
    if os.path.exists(path) and open(path).read() == text:
        return
    with open(path, "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lazyblob", required=True)
    ap.add_argument("--lazyblobd", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    version = subprocess.run([a.lazyblob, "--version"], capture_output=True, text=True,
                             check=True).stdout.split()[1]
    top = Help(run_help([a.lazyblob]))
    verbs = [(e.spec.split()[0], Help(run_help([a.lazyblob, e.spec.split()[0]])))
             for e in top.blocks.get("Subcommands", [])]
    daemon = Help(run_help([a.lazyblobd]))
    write(os.path.join(a.out, "man", "lazyblob.1"),
          man_page("lazyblob", 1, "manage a lazyblob chunk store", top, verbs, version))
    write(os.path.join(a.out, "man", "lazyblobd.8"),
          man_page("lazyblobd", 8, "serve EROFS blobs from a lazyblob chunk store to cachefiles",
                   daemon, [], version))
    write(os.path.join(a.out, "completion", "lazyblob"), completion_lazyblob(top, verbs))
    write(os.path.join(a.out, "completion", "lazyblobd"), completion_lazyblobd(daemon))


if __name__ == "__main__":
    main()
