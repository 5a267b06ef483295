package resolvers

import "github.com/homegoods/storefront/graph/model"

// decodeID returns the database id of a global id of type want given as argument arg.
func decodeID(arg, want, gid string) (string, error) {
	typ, id, ok := model.ParseGlobalID(gid)
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
