"""A reproducible order for poky's SPDX 3.0 image SBOMs.

poky scarthgap's image SBOM task (do_create_image_sbom_spdx, oe.sbom30.create_sbom and the
serializer of oe.spdx30) makes two choices by where Python happened to put objects in memory:

1. Licence de-duplication.  Every recipe's document brings its own licence expression elements
   (IDs in the recipe's namespace).  create_sbom keeps, of equal expressions, the first that
   SHACLObjectSet.foreach_type yields, and foreach_type walks a set of (bool, object) pairs whose
   hashes come from the objects' addresses.  Which recipe's "MIT" survives, and so the IDs the
   relationships name, changes from one process to the next.
2. Blank-node labels.  Each recipe document brings its own CreationInfo (a blank node).  The
   serializer sorts objects by ID, type and name, then by id(), so CreationInfo nodes, which have
   no ID, no name and often equal contents, get their `_:CreationInfoN` labels in address order,
   and the elements refer to them by those labels.

install() makes both depend on the SBOM's contents only:

- foreach_type yields in the order of a content key (the object's ID, or for a blank node its
  type and properties), so the licence element kept is the one with the smallest ID;
- objects sort by that key where poky's order fell back to id();
- after create_sbom, CreationInfo nodes with equal contents become one node, so no two objects
  the serializer must order are equal under the key.  Every element keeps the same creation
  data; the SBOM only holds it once.

The patches live in the process that runs the task (bitbake forks one per task) and change no
output other than the order-dependent parts named above.  They rely on the internals of the
oe.spdx30 and oe.sbom30 of the pinned poky (72983ac, yocto-5.0.15); check() refuses to patch
modules that lack them, so a poky update that changes them fails the task instead of silently
building an SBOM that is not reproducible.
"""

import datetime
import json

_MARK = "_secretvm_sbom_order"


def _is_blank(obj):
    return not obj._id or obj._id.startswith("_:")


def content_key(spdx30, obj, _path=()):
    """A string that depends only on what `obj` says: its ID when it has one, else its type
    and its properties (objects with IDs by ID, blank ones by their own content)."""

    def value(v):
        if isinstance(v, spdx30.SHACLObject):
            if not _is_blank(v):
                return "<%s>" % v._id
            if id(v) in _path:
                raise ValueError("a blank node of the SBOM contains itself")
            return content_key(spdx30, v, _path + (id(obj),))
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, datetime.datetime):
            return v.isoformat()
        if v is None or isinstance(v, (bool, int, float)):
            return json.dumps(v)
        if isinstance(v, (spdx30.ListProxy, list, tuple)):
            return "[" + ",".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            items = sorted((str(k), value(x)) for k, x in v.items())
            return "{" + ",".join("%s:%s" % (json.dumps(k), x) for k, x in items) + "}"
        # Anything else could print its address; stop rather than order by it.
        raise TypeError("unexpected %s in an SBOM object" % type(v).__name__)

    if not _is_blank(obj):
        return "<%s>" % obj._id
    data = obj.__dict__["_obj_data"]
    fields = ("%s:%s" % (json.dumps(k), value(v)) for k, v in sorted(data.items()) if k != "@id")
    return "%s{%s}" % (obj.TYPE, ",".join(fields))


def check(spdx30, sbom30):
    """Raises if the modules are not the ones these patches were written for."""
    missing = [
        name
        for name, where in (
            ("SHACLObjectSet.foreach_type", spdx30.SHACLObjectSet),
            ("SHACLObjectSet.foreach", spdx30.SHACLObjectSet),
            ("SHACLObjectSet.create_index", spdx30.SHACLObjectSet),
            ("SHACLObject.iter_objects", spdx30.SHACLObject),
            ("ListProxy", spdx30),
            ("CreationInfo", spdx30),
            ("create_sbom", sbom30),
        )
        if not hasattr(where, name.rsplit(".", 1)[-1])
    ]
    if missing:
        raise RuntimeError(
            "secretvm.sbomorder: this poky's SPDX library lacks %s; check the patches against it"
            % ", ".join(missing)
        )


def merge_creation_infos(spdx30, objset):
    """Makes every CreationInfo with equal contents one object: points every reference at it
    and drops the others from the set (a document read back from JSON-LD holds its
    CreationInfo as a top-level node).  Returns how many distinct ones are left."""
    # The document is not in the set until poky's write_jsonld_doc adds it for writing, but its
    # CreationInfo is written too.
    everything = list(objset.foreach())
    doc = getattr(objset, "doc", None)
    if doc is not None and doc not in objset.objects:
        everything.append(doc)
        everything.extend(doc.iter_objects(recursive=True, visited=set(everything)))
    # Each CreationInfo's key once (by identity: every object here stays alive until the end).
    keys = {}
    kept = {}

    def key_of(info):
        if id(info) not in keys:
            keys[id(info)] = content_key(spdx30, info)
            kept.setdefault(keys[id(info)], info)
        return keys[id(info)]

    for obj in everything:
        if isinstance(obj, spdx30.CreationInfo):
            key_of(obj)

    def canonical(v):
        if isinstance(v, spdx30.CreationInfo):
            return kept[key_of(v)]
        return v

    for obj in everything:
        data = obj.__dict__["_obj_data"]
        for iri, v in list(data.items()):
            if isinstance(v, spdx30.ListProxy):
                for i, item in enumerate(v):
                    new = canonical(item)
                    if new is not item:
                        v[i] = new
            else:
                new = canonical(v)
                if new is not v:
                    data[iri] = new
    objset.objects = {o for o in objset.objects if canonical(o) is o}
    objset.create_index()
    return len(kept)


def install(spdx30, sbom30):
    """Patches the modules as the module documentation says; a second call does nothing."""
    if getattr(spdx30.SHACLObjectSet, _MARK, False):
        return
    check(spdx30, sbom30)

    def key(obj):
        # poky's order, without its last resort, id().
        if isinstance(obj, str):
            return (obj, "", "")
        return (obj._id or "", obj.TYPE, getattr(obj, "name", None) or "")

    unordered = spdx30.SHACLObjectSet.foreach_type

    def foreach_type(self, typ, *, match_subclass=True):
        found = list(unordered(self, typ, match_subclass=match_subclass))
        found.sort(key=lambda o: content_key(spdx30, o))
        return iter(found)

    def contents(obj):
        return "" if isinstance(obj, str) else content_key(spdx30, obj)

    def lt(self, other):
        mine, theirs = key(self), key(other)
        if mine != theirs:
            return mine < theirs
        # Only blank nodes of one type and name get here: order them by what they say.
        return contents(self) < contents(other)

    create_sbom = sbom30.create_sbom

    def create_sbom_merged(d, name, root_elements, add_objectsets=[]):
        objset, sbom = create_sbom(d, name, root_elements, add_objectsets)
        merge_creation_infos(spdx30, objset)
        return objset, sbom

    spdx30.SHACLObjectSet.foreach_type = foreach_type
    spdx30.SHACLObject.__lt__ = lt
    sbom30.create_sbom = create_sbom_merged
    setattr(spdx30.SHACLObjectSet, _MARK, True)
