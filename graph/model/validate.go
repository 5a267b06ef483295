package model

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
)

// Limits of catalog input: generous for real data, small enough to refuse abuse.
const (
	maxNameLen        = 200
	maxDescriptionLen = 20_000
	maxAttributes     = 50
	maxAttributeText  = 200
	maxPriceCents     = 100_000_000_00 // 100 million in currency units
)

var (
	skuPattern       = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	slugPattern      = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	attributePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)
)

// Slugify derives a URL slug from a name: lowercase ASCII letters and digits joined by single
// dashes.
func Slugify(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
			continue
		}
		dash = true
	}
	return b.String()
}

// Normalize trims the input and fills the slug from the name and the sku when it is missing:
// the sku keeps two products of the same name apart.
func (in *CreateProductInput) Normalize() {
	in.Sku, in.Name = strings.TrimSpace(in.Sku), strings.TrimSpace(in.Name)
	if in.Slug == nil {
		slug := Slugify(in.Name + " " + in.Sku)
		in.Slug = &slug
	}
	if in.Status == nil {
		status := ProductStatusDraft
		in.Status = &status
	}
}

// Validate reports the first invalid field of a normalized input.
func (in *CreateProductInput) Validate() error {
	return firstError(
		checkSKU(&in.Sku), checkName(&in.Name), checkSlug(in.Slug), checkDescription(in.Description),
		checkPrice("input.price", &in.Price), checkPrice("input.cost", in.Cost), CheckAttributes("input.attributes", in.Attributes),
	)
}

// Validate reports the first invalid field given.
func (in *UpdateProductInput) Validate() error {
	return firstError(
		checkSKU(in.Sku), checkName(in.Name), checkSlug(in.Slug), checkDescription(in.Description),
		checkPrice("input.price", in.Price), checkPrice("input.cost", in.Cost), CheckAttributes("input.attributes", in.Attributes),
	)
}

// Normalize trims the name and fills the slug from it when it is missing.
func (in *CreateCategoryInput) Normalize() { normalizeName(&in.Name, &in.Slug) }

// Validate reports the first invalid field.
func (in *CreateCategoryInput) Validate() error {
	return firstError(checkName(&in.Name), checkSlug(in.Slug))
}

// Validate reports the first invalid field given.
func (in *UpdateCategoryInput) Validate() error {
	if in.ParentID != nil && in.MakeRoot != nil && *in.MakeRoot {
		return InvalidArgument("input.makeRoot", "give either parentId or makeRoot, not both")
	}
	return firstError(checkName(in.Name), checkSlug(in.Slug))
}

// Normalize trims the name and fills the slug from it when it is missing.
func (in *BrandInput) Normalize() { normalizeName(&in.Name, &in.Slug) }

// Validate reports the first invalid field.
func (in *BrandInput) Validate() error {
	return firstError(checkName(&in.Name), checkSlug(in.Slug))
}

// Validate reports the first invalid field given.
func (in *UpdateBrandInput) Validate() error {
	return firstError(checkName(in.Name), checkSlug(in.Slug))
}

// normalizeName trims name and fills a missing slug from it.
func normalizeName(name *string, slug **string) {
	*name = strings.TrimSpace(*name)
	if *slug == nil {
		s := Slugify(*name)
		*slug = &s
	}
}

func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func checkSKU(sku *string) error {
	if sku != nil && !skuPattern.MatchString(*sku) {
		return InvalidArgument("input.sku", "sku must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	return nil
}

func checkName(name *string) error {
	if name == nil {
		return nil
	}
	if n := len(strings.TrimSpace(*name)); n == 0 || n > maxNameLen {
		return InvalidArgument("input.name", "name must have 1 to %d characters", maxNameLen)
	}
	return nil
}

func checkSlug(slug *string) error {
	if slug != nil && (!slugPattern.MatchString(*slug) || len(*slug) > maxNameLen) {
		return InvalidArgument("input.slug", "slug must be lowercase letters and digits joined by single dashes, such as \"oak-dining-table\"")
	}
	return nil
}

func checkDescription(d *string) error {
	if d != nil && len(*d) > maxDescriptionLen {
		return InvalidArgument("input.description", "description must have at most %d characters", maxDescriptionLen)
	}
	return nil
}

func checkPrice(path string, c *Cents) error {
	if c != nil && (*c < 0 || *c > maxPriceCents) {
		return InvalidArgument(path, "amount must be between 0 and %s", Cents(maxPriceCents))
	}
	return nil
}

// CheckAttributes validates an attribute object given at path: simple keys, and text, number
// or boolean values, so that filters and facets can rely on its shape.
func CheckAttributes(path string, attrs map[string]any) error {
	if len(attrs) > maxAttributes {
		return InvalidArgument(path, "at most %d attributes", maxAttributes)
	}
	for k, v := range attrs {
		if !attributePattern.MatchString(k) {
			return InvalidArgument(path+"."+k, "attribute keys are lowercase letters, digits and '_', starting with a letter")
		}
		if err := checkAttributeValue(v); err != nil {
			return InvalidArgument(path+"."+k, "%v", err)
		}
	}
	return nil
}

func checkAttributeValue(v any) error {
	switch v := v.(type) {
	case string:
		if len(v) > maxAttributeText {
			return fmt.Errorf("text values have at most %d characters", maxAttributeText)
		}
	case bool, float64, int, int64, fmt.Stringer:
		// json.Number arrives as a Stringer; numbers and booleans are fine.
	default:
		return fmt.Errorf("values must be text, numbers or booleans, not %T", v)
	}
	return nil
}
