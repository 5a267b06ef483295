package resolvers

import (
	"strings"

	"github.com/homegoods/storefront/graph/model"
)

// Global ids name their type, in the style of gid://storefront/Product/<uuid>: opaque to
// clients, readable to people in the playground, and decodable without a database lookup.
const gidPrefix = "gid://storefront/"

// The types that have global ids.
const (
	typeProduct   = "Product"
	typeCategory  = "Category"
	typeBrand     = "Brand"
	typeWarehouse = "Warehouse"
)

func globalID(typ, id string) string {
	return gidPrefix + typ + "/" + id
}

// parseGlobalID splits a global id into its type and database id.
func parseGlobalID(gid string) (typ, id string, ok bool) {
	rest, found := strings.CutPrefix(gid, gidPrefix)
	if !found {
		return "", "", false
	}
	typ, id, found = strings.Cut(rest, "/")
	return typ, id, found && model.IsUUID(id)
}

// decodeID returns the database id of a global id of type want given as argument arg.
func decodeID(arg, want, gid string) (string, error) {
	typ, id, ok := parseGlobalID(gid)
	if !ok {
		return "", model.InvalidArgument(arg, "malformed id %q", gid)
	}
	if typ != want {
		return "", model.InvalidArgument(arg, "id %q is a %s, not a %s", gid, typ, want)
	}
	return id, nil
}

// decodeOptionalID decodes a global id that may be absent.
func decodeOptionalID(arg, want string, gid *string) (*string, error) {
	if gid == nil {
		return nil, nil
	}
	id, err := decodeID(arg, want, *gid)
	return &id, err
}

// decodeIDs decodes a list of global ids of one type.
func decodeIDs(arg, want string, gids []string) ([]string, error) {
	ids := make([]string, len(gids))
	for i, gid := range gids {
		id, err := decodeID(arg, want, gid)
		if err != nil {
			return nil, err
		}
		ids[i] = id
	}
	return ids, nil
}
