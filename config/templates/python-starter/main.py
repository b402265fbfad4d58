"""A starting point: run it in the kernel with `exec(open('main.py').read())`."""


def greet(name: str) -> str:
    return f"Hello, {name}!"


if __name__ == "__main__":
    print(greet("Tandem"))
