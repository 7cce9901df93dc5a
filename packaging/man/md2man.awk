# Turns docs/lab-yaml.md into the lab.yaml(5) page, so the page and the reference never
# disagree: headings become sections, table rows tagged paragraphs, code blocks no-fill.
# usage: awk -v version=V -f md2man.awk docs/lab-yaml.md > lab.yaml.5
function esc(s) {
    gsub(/\\/, "\\e", s)
    gsub(/-/, "\\-", s)
    return s
}
function inline(s,    out, i, n, parts) {
    s = esc(s)
    gsub(/\[[^]]*\]\([^)]*\)/, "&", s)
    # links: keep the text
    while (match(s, /\[[^]]*\]\([^)]*\)/)) {
        t = substr(s, RSTART + 1, RLENGTH)
        sub(/\]\(.*$/, "", t)
        s = substr(s, 1, RSTART - 1) t substr(s, RSTART + RLENGTH)
    }
    n = split(s, parts, "`")
    out = parts[1]
    for (i = 2; i <= n; i++)
        out = out ((i % 2 == 0) ? "\\fB" : "\\fR") parts[i]
    if (n % 2 == 0)
        out = out "\\fR"
    gsub(/\*\*/, "", out)
    if (out ~ /^[.']/)
        out = "\\&" out
    return out
}
function cell(s) {
    sub(/^[ \t]+/, "", s)
    sub(/[ \t]+$/, "", s)
    gsub(/\\\|/, "|", s)
    return s
}
BEGIN {
    print ".TH LAB.YAML 5 \"2026-12-01\" \"bootd " version "\" \"File Formats\""
    print ".SH NAME"
    print "lab.yaml \\- the lab bootd serves: cluster, network, machines, images, GitOps"
    code = 0
}
/^```/ {
    if (code) { print ".fi"; print ".RE"; code = 0 } else { print ".RS"; print ".nf"; code = 1 }
    next
}
code { print esc($0); next }
/^# / { print ".SH DESCRIPTION"; next }
/^## / { t = substr($0, 4); print ".SH " toupper(esc(t)); next }
/^\|[-| ]+\|$/ { next }
/^\| key \|/ { next }
/^\|/ {
    line = $0
    gsub(/\\\|/, "\001", line)
    n = split(line, f, "|")
    for (i = 1; i <= n; i++) gsub(/\001/, "|", f[i])
    key = cell(f[2]); def = cell(f[3]); what = cell(f[4])
    print ".TP"
    if (def ~ /^— \(required/)
        print inline(key) " (" inline(substr(def, index(def, "required"), length(def) - index(def, "required"))) ")"
    else if (def != "" && def != "—")
        print inline(key) " (default: " inline(def) ")"
    else
        print inline(key)
    print (what == "" ? "\\&" : inline(what))
    next
}
/^$/ { print ".PP"; next }
/^\* / { print ".IP \\(bu 2"; print inline(substr($0, 3)); next }
{ print inline($0) }
END {
    print ".SH SEE ALSO"
    print ".BR bootd (8),"
    print ".BR bootctl (1),"
    print "/usr/share/doc/bootd/"
}
