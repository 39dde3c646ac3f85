"""apps/include/iotbpf.h is generated from the tables, never edited: a stale header fails here."""

from conftest import REPO
from iotbpf.kernel.header import generate
from iotbpf.kernel.helpers import HELPER_TABLE
from iotbpf.kernel.hooks import HOOKS


def test_committed_header_is_up_to_date():
    committed = (REPO / "apps" / "include" / "iotbpf.h").read_text()
    assert committed == generate(), \
        "apps/include/iotbpf.h is stale: run `iotbpf header -o apps/include/iotbpf.h`"


def test_header_declares_every_hook_context_and_helper():
    text = generate()
    for name, hook in HOOKS.items():
        assert "struct iot_%s_ctx {" % name in text
        assert "_Static_assert(sizeof(struct iot_%s_ctx) == %d" % (name, hook.size) in text
    for hid, name, *_ in HELPER_TABLE:
        assert "%s)" % name in text and "(void *) 0x%x;" % hid in text


def test_header_compiles_and_its_struct_offsets_match_the_tables(clang):
    checks = []
    for name, hook in HOOKS.items():
        for f in hook.fields:
            checks.append("_Static_assert(__builtin_offsetof(struct iot_%s_ctx, %s) == %d, \"%s.%s\");"
                          % (name, f.name, f.offset, name, f.name))
    source = '#include "iotbpf.h"\n' + "\n".join(checks) + "\nint x SEC(\"license\");\n"
    assert clang.compile(source).exists()


def test_header_declares_exactly_the_linux_helpers_the_vm_implements():
    from iotbpf.ebpf.helpers import linux_helper_specs
    from iotbpf.kernel.header import LINUX_HELPERS

    implemented = sorted((s.id, "bpf_" + s.name) for s in linux_helper_specs())
    assert sorted((hid, name) for hid, _ret, name, _args in LINUX_HELPERS) == implemented
