package resolvers

import (
	"strings"
	"testing"

	"github.com/homegoods/storefront/graph"
)

// Every priced field is a field of the schema, so that a renamed field cannot keep a price
// that no longer applies while the new name goes uncharged; every list that no argument
// sizes has an expected size.
func TestPricesNameSchemaFields(t *testing.T) {
	schema := graph.NewExecutableSchema(graph.Config{}).Schema()
	for field, p := range prices {
		typ, name, _ := strings.Cut(field, ".")
		def := schema.Types[typ]
		if def == nil || def.Fields.ForName(name) == nil {
			t.Errorf("priced field %s is not in the schema", field)
			continue
		}
		isList := def.Fields.ForName(name).Type.Elem != nil
		if isList && !p.isList() && len(p.sizedFields) == 0 {
			t.Errorf("%s is a list without a size", field)
		}
	}
}
